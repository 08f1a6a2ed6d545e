"""Held-out-source and held-out-family figures from the LM-score cache: which LM features transfer.

Issue 13 asks to select features by the *worst* held-out source, never by pooled CV. This reads
the cache `score_lm.py` made (`models/training/scores/`) and, for each way of holding out, fits
each feature set on everything else and scores what was held out:

- a **family** (OpenAI, Anthropic, Google, GPT-2-era, SmolLM2): all its machine texts, the human
  texts they were made from (same `pair`), and a fixed hash-chosen fifth of the other human pairs
  (so unpaired families have humans to be told from) leave training together;
- a **human source** (a dataset x domain): its texts and every text made from them leave
  training; the figure is the share of them flagged at the training humans' 1% / 5% FPR
  thresholds (the promise a threshold must keep on text it never saw).

Feature sets: `signals` (mean log-prob, curvature, predictive entropy), `probe` (the pooled
hidden state), `both` (one regularised logistic on the two together). Each is a class-balanced
L2 logistic regression (`detector.fit_head`).

    python models/training/holdout_sources.py [--budget 512] [--embeddings DIR] [--layer L]
        [--features signals,probe,both] [--classifier]
"""

from __future__ import annotations

import argparse
import glob
import gzip
import hashlib
import json
import os

import numpy as np

from collapseguard.models import detector as D
from sources import family, training_rows

HERE = os.path.dirname(os.path.abspath(__file__))
SIGNALS = ("lm_mean_logprob", "lm_fdg_curvature", "lm_mean_entropy")
FEATURE_SETS = ("signals", "probe", "both")
L2 = {"signals": 1.0, "probe": D.PROBE_L2, "both": D.PROBE_L2}


def load(budget: int, embeddings: str, layer: int | None = None) -> tuple[list[dict], np.ndarray, np.ndarray]:
    """(rows with `pair_key`, signal matrix [n, 3], embedding matrix [n, d]) in cache order."""
    rows = list(training_rows())
    with gzip.open(os.path.join(HERE, "scores", "lm-signals.jsonl.gz"), "rt", encoding="utf-8") as f:
        cached = [json.loads(line) for line in f]
    if [c["id"] for c in cached] != [r["id"] for r in rows]:
        raise SystemExit("the score cache does not match the training files: rerun score_lm.py")
    x = np.array([[c[str(budget)][k] if c[str(budget)][k] is not None else np.nan for k in SIGNALS]
                  for c in cached], dtype=float)
    stem = os.path.join(embeddings, f"embedding-{budget}" + (f"-L{layer}" if layer else ""))
    if os.path.exists(stem + ".npy"):
        e = np.load(stem + ".npy")
    else:  # the row blocks score_lm.py writes
        e = np.concatenate([np.load(p) for p in sorted(glob.glob(stem + ".[0-9]*.npy"))])
    e = np.nan_to_num(e.astype(np.float64))
    for r in rows:
        r["pair_key"] = str(r.get("pair") or D.pair_group(r))
        r["family"] = family(r["generator"]) if r.get("generator") else "human"
    return rows, x, e


def features(kind: str, x: np.ndarray, e: np.ndarray) -> np.ndarray:
    return {"signals": x, "probe": e, "both": np.hstack([x, e])}[kind]


def _fifth(key: str) -> bool:
    return int(hashlib.sha256(f"cg-holdout-v1\x00{key}".encode()).hexdigest(), 16) % 5 == 0


def family_splits(rows: list[dict]):
    """(family, test mask, train mask) per family."""
    y = np.array([r["family"] != "human" for r in rows])
    pool = np.array([not yy and _fifth(r["pair_key"]) for r, yy in zip(rows, y)])
    for fam in sorted({r["family"] for r in rows} - {"human"}):
        syn = np.array([r["family"] == fam for r in rows])
        pairs = {r["pair_key"] for r, s in zip(rows, syn) if s}
        paired_human = np.array([not yy and r["pair_key"] in pairs for r, yy in zip(rows, y)])
        test = syn | paired_human | pool
        gone = {r["pair_key"] for r, t in zip(rows, test) if t}
        train = np.array([r["pair_key"] not in gone for r in rows]) & ~test
        yield fam, test, train


def human_source_splits(rows: list[dict]):
    for src in sorted({r["source"] for r in rows if r["family"] == "human"}):
        test = np.array([r["source"] == src for r in rows])
        gone = {r["pair_key"] for r, t in zip(rows, test) if t}
        train = np.array([r["pair_key"] not in gone for r in rows])
        yield src, test, train


def classifier_by_family(rows: list[dict], workers: int = 2) -> dict:
    """The fastText classifier alone (shipped settings: 400 epochs, word bigrams) per held-out
    family: trained on the split's training rows, GPT-2-era continuations left out as
    `calibrate` leaves them out (they open with a human's own words); AUROC / TPR of the held-out
    family. Not stacked with the LM features: that needs out-of-fold scores (several trainings
    per split, about 5 minutes each here)."""
    from multiprocessing import get_context

    from collapseguard.models.classifier import train_and_predict

    y = np.array([r["family"] != "human" for r in rows], dtype=int)
    splits = list(family_splits(rows))
    jobs = [([(r["text"], int(yy)) for r, yy, t in zip(rows, y, train) if t and r["family"] != "gpt2-era"],
             [r["text"] for r, t in zip(rows, test) if t], "words") for _, test, train in splits]
    with get_context("spawn").Pool(workers) as pool:
        scores = pool.map(train_and_predict, jobs)
    return {fam: D.metrics(y[test], np.asarray(p)) for (fam, test, _), p in zip(splits, scores)}


def run(budget: int, embeddings: str, layer: int | None = None, kinds=FEATURE_SETS) -> dict:
    rows, x, e = load(budget, embeddings, layer)
    y = np.array([r["family"] != "human" for r in rows], dtype=int)
    out: dict = {"budget": budget, "layer": layer, "kinds": list(kinds), "families": {}, "human_sources": {}}
    for kind in kinds:
        f = features(kind, x, e)
        for fam, test, train in family_splits(rows):
            head = D.fit_head(f[train], y[train], l2=L2[kind])
            s = D.head_logits(head, f[test])
            out["families"].setdefault(fam, {})[kind] = D.metrics(y[test], s)
        for src, test, train in human_source_splits(rows):
            head = D.fit_head(f[train], y[train], l2=L2[kind])
            train_h = D.head_logits(head, f[train & (y == 0)])
            s = D.head_logits(head, f[test])
            out["human_sources"].setdefault(src, {})[kind] = {
                "n": int(test.sum()),
                "fpr_at_1pct": round(float((s >= D.threshold_at_fpr(train_h, 0.01)).mean()), 4),
                "fpr_at_5pct": round(float((s >= D.threshold_at_fpr(train_h, 0.05)).mean()), 4)}
        print(f"done: {kind}", flush=True)
    return out


def table(result: dict) -> str:
    lines = [f"held-out family (budget {result['budget']}): AUROC / TPR@1% / TPR@5%"]
    lines.append(f"{'family':12}" + "".join(f"{k:>24}" for k in result["kinds"]))
    for fam, by in result["families"].items():
        cells = [f"{m['auroc']:.3f}/{m['tpr_at_1pct_fpr']:.2f}/{m['tpr_at_5pct_fpr']:.2f}" for m in by.values()]
        lines.append(f"{fam:12}" + "".join(f"{c:>24}" for c in cells))
    lines.append("held-out human source: FPR at the training humans' 1% / 5% thresholds")
    for src, by in result["human_sources"].items():
        cells = [f"{m['fpr_at_1pct']:.3f}/{m['fpr_at_5pct']:.3f}" for m in by.values()]
        lines.append(f"{src:52}" + "".join(f"{c:>16}" for c in cells) + f"   n={next(iter(by.values()))['n']}")
    for kind in result["kinds"]:
        worst_auc = min(by[kind]["auroc"] for by in result["families"].values())
        worst_fpr = max(by[kind]["fpr_at_1pct"] for by in result["human_sources"].values())
        lines.append(f"worst {kind:8}: family AUROC {worst_auc:.3f}; human-source FPR at the 1% threshold {worst_fpr:.3f}")
    return "\n".join(lines)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", type=int, default=512)
    ap.add_argument("--embeddings", default=os.path.join(HERE, "scores"))
    ap.add_argument("--layer", type=int, help="read embedding-<budget>-L<layer> (probe depth; score_lm.py --layers)")
    ap.add_argument("--features", default=",".join(FEATURE_SETS), help="feature sets to fit")
    ap.add_argument("--json", help="also write the figures here")
    ap.add_argument("--classifier", action="store_true",
                    help="also train the fastText classifier per held-out family (about 5 min per family)")
    args = ap.parse_args(argv)
    kinds = tuple(k for k in args.features.split(",") if k)
    if not set(kinds) <= set(FEATURE_SETS):
        ap.error(f"--features: choose from {', '.join(FEATURE_SETS)}")
    result = run(args.budget, args.embeddings, args.layer, kinds)
    print(table(result))
    if args.classifier:
        result["classifier_by_family"] = clf = classifier_by_family(load(args.budget, args.embeddings)[0])
        print("held-out family, fastText classifier alone: AUROC / TPR@1% / TPR@5%")
        for fam, m in clf.items():
            print(f"{fam:12} {m['auroc']:.3f}/{m['tpr_at_1pct_fpr']:.2f}/{m['tpr_at_5pct_fpr']:.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2, sort_keys=True)


if __name__ == "__main__":
    main()
