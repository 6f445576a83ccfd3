"""Attention from scratch equals PyTorch's; the Transformer learns its task; the real model's
attention and word vectors say what the chapters say."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

import backbones as bb
from backbones.layers import MultiHeadAttention, merge_heads, scaled_dot_product_attention, split_heads


@pytest.mark.parametrize(
    "shape_q, shape_k, dv",
    [
        ((2, 5, 8), (2, 5, 8), 8),
        ((1, 1, 4), (1, 3, 4), 2),
        ((2, 3, 6, 16), (2, 3, 9, 16), 5),
        ((4, 7, 32), (4, 7, 32), 32),
    ],
)
@pytest.mark.parametrize("mask_kind", [None, "causal", "random", "float"])
def test_scaled_dot_product_attention_equals_torch(shape_q, shape_k, dv, mask_kind):
    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(shape_q, generator=g), torch.randn(shape_k, generator=g)
    v = torch.randn(*shape_k[:-1], dv, generator=g)
    lq, lk = shape_q[-2], shape_k[-2]
    mask = None
    if mask_kind == "causal":
        mask = torch.ones(lq, lk, dtype=torch.bool).tril(diagonal=lk - lq)
    elif mask_kind == "random":
        mask = torch.rand(lq, lk, generator=g) > 0.4
        mask[:, 0] = True
    elif mask_kind == "float":
        mask = torch.randn(lq, lk, generator=g)
    ours, weights = scaled_dot_product_attention(q, k, v, mask, return_weights=True)
    torch.testing.assert_close(ours, F.scaled_dot_product_attention(q, k, v, attn_mask=mask))
    torch.testing.assert_close(weights.sum(-1), torch.ones(weights.shape[:-1]))


def test_wrong_shapes_get_a_hint():
    with pytest.raises(ValueError, match="q k\\^T needs them equal"):
        scaled_dot_product_attention(torch.randn(2, 5, 8), torch.randn(2, 5, 4), torch.randn(2, 5, 8))
    with pytest.raises(ValueError, match="each key needs its value"):
        scaled_dot_product_attention(torch.randn(2, 5, 8), torch.randn(2, 5, 8), torch.randn(2, 4, 8))


@pytest.mark.parametrize("bias", [True, False])
def test_multi_head_attention_equals_torch(bias):
    torch.manual_seed(0)
    reference = torch.nn.MultiheadAttention(embed_dim=48, num_heads=6, batch_first=True, bias=bias)
    ours = MultiHeadAttention.from_torch(reference)
    x, context = torch.randn(3, 7, 48), torch.randn(3, 11, 48)
    mask = torch.ones(7, 7, dtype=torch.bool).tril()
    out, weights = ours(x, mask=mask, return_weights=True)
    ref_out, ref_weights = reference(x, x, x, attn_mask=~mask, average_attn_weights=False)  # torch: True = blocked
    torch.testing.assert_close(out, ref_out)
    torch.testing.assert_close(weights, ref_weights)
    torch.testing.assert_close(ours(x, context), reference(x, context, context)[0])  # cross-attention


def test_split_and_merge_heads_are_inverse():
    x = torch.randn(2, 5, 12)
    heads = split_heads(x, 3)
    assert heads.shape == (2, 3, 5, 4)
    torch.testing.assert_close(heads[:, 1, :, :], x[:, :, 4:8])  # head 1 takes features 4..7
    torch.testing.assert_close(merge_heads(heads), x)
    with pytest.raises(ValueError, match="not divisible"):
        split_heads(x, 5)


def test_positional_encoding_is_the_papers():
    encoding = bb.models.SinusoidalPositionalEncoding(embed_dim=8, max_len=10).encoding
    position, i = 3, 1
    assert encoding[position, 2 * i] == pytest.approx(torch.sin(torch.tensor(position / 10000 ** (2 * i / 8))).item())
    assert encoding[position, 2 * i + 1] == pytest.approx(
        torch.cos(torch.tensor(position / 10000 ** (2 * i / 8))).item()
    )


@pytest.fixture(scope="module")
def reversal_model():
    """The chapter's quick training run."""
    bb.seed_everything(0)
    train, test = bb.reversal_task(length=8, vocab_size=10, train_size=10_000, test_size=1_000)
    model = bb.models.TransformerEncoder(vocab_size=10, embed_dim=32, depth=2, num_heads=2, mlp_ratio=2, max_len=8)
    loader = DataLoader(train, batch_size=64, shuffle=True, drop_last=True, generator=torch.Generator().manual_seed(0))
    bb.fit(model, loader, steps=600, optimizer=torch.optim.AdamW(model.parameters(), lr=3e-3))
    return model.eval(), test


def test_transformer_learns_to_reverse(reversal_model):
    model, test = reversal_model
    tokens, targets = test[:]
    with torch.no_grad():
        predicted = model(tokens).argmax(dim=-1)
    assert (predicted == targets).all(dim=1).float().mean() > 0.99  # measured: 100% of sequences


def test_last_layer_attends_to_the_mirrored_position(reversal_model):
    model, test = reversal_model
    with torch.no_grad(), bb.record_attention(model) as maps:
        model(test[:][0])
    last = maps[-1].mean(dim=0)  # (heads, T, T)
    mirrored = last[:, torch.arange(8), torch.arange(7, -1, -1)].mean(dim=-1)
    assert mirrored.max() > 0.9  # measured: 98% and 96%
    first = maps[0].mean(dim=0)[:, torch.arange(8), torch.arange(7, -1, -1)].mean(dim=-1)
    assert first.max() < mirrored.max()


@pytest.fixture(scope="module")
def minilm():
    return bb.text.load_text_model()


def test_minilm_loads_offline_with_attention(minilm):
    assert minilm.name == "minilm" and "no download" in minilm.note
    tokens, attention = minilm.attention("The animal didn't cross the street because it was too tired.")
    assert attention.shape == (6, 12, len(tokens), len(tokens))
    torch.testing.assert_close(attention.sum(-1), torch.ones(6, 12, len(tokens)))


def test_some_heads_link_it_to_animal(minilm):
    tokens, attention = minilm.attention("The animal didn't cross the street because it was too tired.")
    to_animal = attention[:, :, tokens.index("it"), tokens.index("animal")]
    assert to_animal[3, 1] > 0.5 and to_animal[0, 6] > 0.15  # measured 0.68 and 0.22
    assert (to_animal > 0.5).sum() <= 4  # most heads do other things


def test_head_computed_by_hand_equals_the_model(minilm):
    sentence = "Karel is teacher and Mario is plumber."
    tokens, attention = minilm.attention(sentence)
    for layer, head in [(0, 1), (2, 3), (5, 11)]:
        _, q, k, v = minilm.head_inputs(sentence, layer, head)
        weights = (q @ k.T / q.shape[-1] ** 0.5).softmax(dim=-1)
        torch.testing.assert_close(weights, attention[layer, head], atol=1e-5, rtol=1e-4)


def test_static_vectors_solve_king_man_woman(minilm):
    vectors = minilm.word_vectors()
    query = minilm.vector("king") - minilm.vector("man") + minilm.vector("woman")
    similarity = F.cosine_similarity(query.unsqueeze(0), vectors)
    for word in ("king", "man", "woman"):
        similarity[minilm.tokenizer.convert_tokens_to_ids(word)] = -1
    assert minilm.tokenizer.convert_ids_to_tokens(int(similarity.argmax())) == "queen"


def test_static_vectors_carry_the_stereotype(minilm):
    cosine = lambda a, b: F.cosine_similarity(minilm.vector(a), minilm.vector(b), dim=0).item()  # noqa: E731
    assert cosine("she", "nurse") > cosine("she", "doctor")
    assert cosine("he", "doctor") > cosine("he", "nurse")


def test_bert_offline_falls_back_to_minilm_and_says_why():
    text = bb.text.load_text_model("bert-base-uncased")
    assert text.name == "minilm" and text.note.startswith("bert-base-uncased unavailable (BACKBONES_OFFLINE=1)")
    with pytest.raises(ValueError, match="choose one of"):
        bb.text.load_text_model("gpt2")


def test_word_positions_find_every_piece(minilm):
    tokens = minilm.tokens("Karel is teacher and Mario is plumber.")
    assert [tokens[i] for i in bb.text.word_positions(tokens, "plumber")] == ["plum", "##ber"]
    assert bb.text.word_positions(tokens, "is", start=3) == [tokens.index("is", 3)]
    with pytest.raises(ValueError, match="'nurse' is not among the tokens"):
        bb.text.word_positions(tokens, "nurse")


def test_batched_attention_equals_one_at_a_time(minilm):
    sentences = [
        "Karel is teacher and Mario is plumber.",
        "The animal didn't cross the street because it was too tired.",
    ]
    for (tokens, weights), sentence in zip(minilm.attentions(sentences), sentences):
        single_tokens, single = minilm.attention(sentence)
        assert tokens == single_tokens
        torch.testing.assert_close(weights, single, atol=1e-5, rtol=1e-4)


def test_the_karel_head_is_positional_and_no_head_passes_the_control(minilm):
    """The chapter's control: the strongest karel -> teacher head follows the word two places on."""
    tokens, attention = minilm.attention("Karel is teacher and Mario is plumber.")
    layer, head = divmod(attention[:, :, tokens.index("karel"), tokens.index("teacher")].argmax().item(), 12)
    swapped = minilm.attention_to("Mario is teacher and Karel is plumber.", "karel", ["teacher"])
    assert swapped[layer, head, 0] < 0.1  # measured 0.04
    margins, template_of_row = bb.experiments.name_job_margins(minilm)
    rows = torch.tensor(template_of_row)
    passed = (margins > 0).float()
    assert passed[rows == 0, layer, head].mean() == 1 and passed[rows == 1, layer, head].mean() == 1
    assert passed[rows == 2, layer, head].mean() < 0.75  # job before the name: measured 0.5
    assert (passed.mean(dim=0) == 1).sum() == 0  # no head passes every case
    assert passed.mean(dim=0).max() < 0.95  # measured 0.83


def test_no_minilm_head_resolves_it(minilm):
    weights = bb.experiments.coreference_weights(minilm)  # (pairs, 2, layers, heads, 2)
    assert weights.shape == (3, 2, 6, 12, 2)
    switch = bb.experiments.coreference_switch(weights)
    assert (switch > 0.05).all(dim=0).sum() == 0  # no head moves the right way in every pair
    animal_sentence = weights[0]  # tired / wide
    assert animal_sentence[1, 5, 11, 0] > 5 * animal_sentence[1, 5, 11, 1]  # "wide": still animal (0.56 vs 0.04)


def test_association_test_is_exact_and_signed():
    scores = {w: float(i) for i, w in enumerate("abcdefgh")}
    effect, p = bb.experiments.association_test(scores, list("efgh"), list("abcd"))
    assert effect > 0 and p == pytest.approx(1 / 70)  # the one most extreme of C(8, 4) splits
    effect, p = bb.experiments.association_test(scores, list("abcd"), list("efgh"))
    assert effect < 0 and p == 1


def test_stereotype_is_in_the_sets_not_one_pair(minilm):
    cosine = lambda a, b: F.cosine_similarity(minilm.vector(a), minilm.vector(b), dim=0).item()  # noqa: E731
    assert cosine("woman", "doctor") > cosine("woman", "nurse")  # the anecdote cuts the other way too
    female = ["nurse", "secretary", "receptionist", "librarian", "nanny", "housekeeper", "dancer", "maid"]
    male = ["engineer", "carpenter", "mechanic", "pilot", "surgeon", "soldier", "sheriff", "banker"]
    static = {job: cosine("she", job) - cosine("he", job) for job in female + male}
    effect, p = bb.experiments.association_test(static, female, male)
    assert effect > 1 and p < 0.01  # measured 1.80, p = 0.0001
    attended = bb.experiments.pronoun_job_scores(minilm, female + male)
    effect, p = bb.experiments.association_test(attended, female, male)
    assert effect > 0.8 and p < 0.05  # measured 1.48, p = 0.001
    assert max(abs(v) for v in attended.values()) < 0.05  # and small: under a hundredth on average
