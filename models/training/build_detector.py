"""Rebuilds the shipped detector from the repo alone: `make detector`.

    python models/training/build_detector.py [--out models/shipped] [--jobs N]

Reads the training files (`models/training/data/`, `sources.FILES`) and the LM-score cache made
by `score_lm.py` (`models/training/scores/`: the LM signals and the probe's pooled hidden state
at `BUDGET` tokens), computes the cheap signals with the stage's own code, then
(`models.detector_build`, `models.calibration`):

1. holds out every generator family, every synthetic source and every human source in turn,
   training the fastText classifier once per split on what is left (`--jobs` processes);
2. fits every candidate (`CANDIDATES`, `NO_LM_CANDIDATES`) on each split and keeps the one with
   the best worst held-out AUROC (then the next worst); the threshold comes from every human
   source's held-out scores, at the loosest per-source target whose worst human source, checked
   against the threshold the other sources give, stays within 2% flagged;
3. trains the shipped classifier on every row it may learn from, fits the chosen candidates on
   every row, and writes `classifier.ftz`, `classifier.json` and `calibration.json` (held-out
   tables, every candidate's summary and the rule included).

Deterministic: single-threaded fastText with a fixed seed, hash-chosen splits, sorted JSON;
the same files come out for any `--jobs`. About 30 minutes on 2 cores, most of it fastText.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import time

import numpy as np

from sources import FILES, training_rows

from collapseguard.models import detector_build as B

HERE = os.path.dirname(os.path.abspath(__file__))
SCORES = os.path.join(HERE, "scores")
BUDGET = 128  # LM tokens per document: the cost curve in the README (no transfer gained beyond)


def cheap_signals(texts: list[str]) -> list[dict]:
    """The stage's cheap signals (`transforms.signals`, default config) of the texts."""
    from collapseguard.pipeline.config import SignalsConfig
    from collapseguard.transforms.signals import CheapSignals

    scorer = CheapSignals(SignalsConfig())
    recs = [{"text": t} for t in texts]
    for i in range(0, len(recs), 256):
        scorer.score(recs[i:i + 256])
    return [{k: r[k] for k in B.CHEAP} for r in recs]


def load(budget: int = BUDGET):
    """(training rows with their cached LM signals and cheap signals, the hidden states [n, d])."""
    rows = list(training_rows())
    with gzip.open(os.path.join(SCORES, "lm-signals.jsonl.gz"), "rt", encoding="utf-8") as f:
        cached = [json.loads(line) for line in f]
    if [c["id"] for c in cached] != [r["id"] for r in rows]:
        raise SystemExit("the score cache does not match the training files: rerun score_lm.py")
    for r, c, cheap in zip(rows, cached, cheap_signals([r["text"] for r in rows])):
        r.update(c[str(budget)], **cheap, y=int(r["label"] != "human"), group=r.get("pair"))
    emb = np.load(os.path.join(SCORES, f"embedding-{budget}.npy")).astype(np.float64)
    return rows, emb


def classifier_per_split(corpus, texts: list[str], splits, jobs: int, cache: str | None = None) -> dict:
    """The fastText classifier's held-out log-odds per split, trained as `make detector` trains
    them (`detector_build.classifier_by_split`); with `cache`, read from that pickle when it
    exists, else computed and written there (for experiments that try several heads)."""
    import pickle

    if cache and os.path.exists(cache):
        with open(cache, "rb") as f:
            return pickle.load(f)
    clf = B.classifier_by_split(corpus, texts, splits, jobs, B.CLF_SETTINGS)
    if cache:
        with open(cache, "wb") as f:
            pickle.dump(clf, f)
    return clf


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join(os.path.dirname(HERE), "shipped"))
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="fastText processes (same result for any)")
    args = ap.parse_args(argv)
    t0 = time.time()
    rows, emb = load()
    corpus = B.corpus_from_rows(rows, emb)
    with open(os.path.join(SCORES, "scored.json"), encoding="utf-8") as f:
        scored = json.load(f)
    cal = B.build(corpus, [r["text"] for r in rows], args.out, workers=args.jobs, lm_max_tokens=BUDGET,
                  training_set={"inputs": list(FILES), "lm_scores": {k: scored[k] for k in ("model_version", "scorer")}},
                  log=lambda m: print(f"[{time.time() - t0:.0f}s] {m}", flush=True))
    print(json.dumps({k: {kk: v for kk, v in sel.items() if kk in ("chosen", "threshold_rule")}
                      for k, sel in cal["selection"].items()}, indent=1, sort_keys=True))
    print(f"wrote {args.out} in {time.time() - t0:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
