"""word2vec from scratch against gensim: words per second and WordSim-353, same corpus, same settings.

    .venv/bin/python benchmarks/word2vec_speed.py                 # head500 (gensim's wheel), 3 seeds
    .venv/bin/python benchmarks/word2vec_speed.py --corpus text8  # text8 when the network allows

Ours is ``backbones.word2vec.train_word2vec`` (torch, batched SGD on the rows a batch touches);
gensim's is ``Word2Vec(sg=1)`` with the same dimension, window, negatives, epochs, subsampling,
learning rates and min_count, and as many worker threads as torch uses. Words per second counts
every token of the corpus once per epoch for both. Quality: Spearman correlation of cosine with
WordSim-353's human scores, over the pairs in the vocabulary; head500 is Porter-stemmed, so the
WordSim words are stemmed the same way before lookup (the record gives the unstemmed score too).
Written to benchmarks/results/word2vec_speed.json with the machine named.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from backbones import records, word2vec, words

RESULTS = Path(__file__).resolve().parent / "results"


def main(argv: list[str]) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", default="head500", choices=tuple(word2vec.CORPORA))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--out", type=Path, default=RESULTS / "word2vec_speed.json")
    args = parser.parse_args(argv[1:])
    from gensim.parsing.porter import PorterStemmer

    corpus = word2vec.load_corpus(args.corpus)
    stem = PorterStemmer().stem if corpus.name == "head500" else None
    pairs = words.similarity_pairs("wordsim353")
    settings = {
        "dim": 100,
        "window": 5,
        "negative": 5,
        "epochs": args.epochs,
        "sample": 1e-3,
        "lr": 0.025,
        "min_lr": 1e-4,
    }
    threads = torch.get_num_threads()
    runs = []
    for seed in range(args.seeds):
        ours = word2vec.train_word2vec(corpus, seed=seed, **settings)
        theirs, gensim_wps = word2vec.train_gensim(corpus, seed=seed, workers=threads, **settings)
        row = {
            "seed": seed,
            "ours_words_per_s": round(ours.words_per_second),
            "gensim_words_per_s": round(gensim_wps),
            "ours_final_loss": round(ours.losses[-1][1], 3),
        }
        for name, vectors in (("ours", ours.vectors), ("gensim", theirs)):
            row[f"{name}_wordsim"], row["wordsim_pairs_missing"] = words.similarity_score(vectors, pairs, key=stem)
            row[f"{name}_wordsim_unstemmed"], row["unstemmed_missing"] = words.similarity_score(vectors, pairs)
        runs.append(row)
        print(row, flush=True)

    def summary(key: str) -> dict:
        values = np.array([r[key] for r in runs], dtype=float)
        return {
            "mean": round(float(values.mean()), 4),
            "min": round(float(values.min()), 4),
            "max": round(float(values.max()), 4),
        }

    ratio = [r["ours_words_per_s"] / r["gensim_words_per_s"] for r in runs]
    record = records.write_record(
        args.out,
        what=f"skip-gram with negative sampling on {corpus}: ours (torch) vs gensim Word2Vec",
        settings={
            **settings,
            "min_count": corpus.min_count,
            "corpus": corpus.name,
            "tokens": corpus.tokens,
            "vocabulary": len(corpus.words),
            "threads": threads,
            "gensim": __import__("gensim").__version__,
            "wordsim_key": "Porter stem" if stem else "as is",
        },
        runs=runs,
        argv=argv,
    )
    record["summary"] = {
        key: summary(key) for key in ("ours_words_per_s", "gensim_words_per_s", "ours_wordsim", "gensim_wordsim")
    }
    record["summary"]["speed_ratio"] = {
        "mean": round(float(np.mean(ratio)), 3),
        "min": round(min(ratio), 3),
        "max": round(max(ratio), 3),
    }
    record["bound"] = (
        "Per pair, ours gathers 1 + negatives output rows and 1 input row (6 x 100 floats), materialises "
        "the same again as gradient rows and scatters them back with index_add_: several passes over "
        "about 2.4 KB per pair through memory, one torch operator at a time. gensim's C loop does each "
        "pair's dot products and updates in registers and cache, a word at a time. The work is "
        "memory traffic, not arithmetic (about 3.6 kFLOP per pair)."
    )
    args.out.write_text(__import__("json").dumps(record, indent=1) + "\n")
    print(record["summary"])
    return record


if __name__ == "__main__":
    main(sys.argv)
