"""Where the detector's out-of-domain skill comes from: the same leave-domains-out splits as
`collapseguard calibrate`, scored four ways, pooled over the folds.

  probe alone        the logistic probe on lm_embedding (what `lm_probe_logit` is)
  classifier alone   the fastText classifier's probability
  detector - probe   the whole detector without the probe feature
  detector           the whole detector, as shipped

Prints AUROC / TPR at 1% FPR / TPR at 5% FPR per generator family (its texts against all human
texts of the held-out domains). Reads the scored rows from calibrate's `--scores` cache (and
scores what is missing there, with the stage, as calibrate would):

    python models/training/detector_ablation.py --scores scores.jsonl \\
        --labeled models/training/data/labeled-dev.jsonl --labeled models/training/data/human-extra.jsonl \\
        --labeled models/training/data/synthetic-smollm2.jsonl \\
        --labeled models/training/data/synthetic-chat.jsonl --labeled models/training/data/human-more.jsonl

About 20 minutes on 2 cores (some 50 fastText trainings in `--jobs` processes).
"""

from __future__ import annotations

import argparse
import json
import os

import numpy as np

from collapseguard.models import detector as D
from collapseguard.pipeline import detector_cli as C


def _line(y: np.ndarray, s: np.ndarray) -> str:
    return (f"{D.auroc(y, s):.3f} / {D.tpr_at_fpr(y, s, 0.01):.2f} / {D.tpr_at_fpr(y, s, 0.05):.2f}")


def ablation(rows: list[dict], workers: int, l2: float = D.PROBE_L2) -> dict[str, np.ndarray]:
    y = np.array([r["y"] for r in rows])
    kinds = C.synthetic_kinds(rows)
    emb = C.Embeddings(rows)
    no_probe = tuple(f for f in D.FEATURES if f != D.PROBE_FEATURE)
    pooled = {k: np.full(len(rows), np.nan) for k in ("probe alone", "classifier alone", "detector - probe", "detector")}
    for name, train, test in C.held_out_splits(rows, y, "domain"):
        m = train & emb.learn
        probe = D.fit_probe(emb.e[m], y[m], l2=l2)
        pooled["probe alone"][test] = D.probe_apply(probe, emb.e[test], emb.ok[test])
        job = (C.classifier_training_rows([r for r, t in zip(rows, train) if t]),
               [r["text"] for r, t in zip(rows, test) if t], C.DEFAULT_VIEW)
        pooled["classifier alone"][test] = C.run_classifier_jobs([job])[0]
        pooled["detector - probe"][test] = C._fit_held_out(rows, y, train, test, no_probe, C.DEFAULT_VIEW, kinds,
                                                           workers)[0]
        pooled["detector"][test] = C._fit_held_out(rows, y, train, test, D.FEATURES, C.DEFAULT_VIEW, kinds,
                                                   workers, emb)[0]
        print(f"  done {name[:70]}", flush=True)
    return pooled


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--labeled", action="append", required=True)
    ap.add_argument("--scores", required=True, help="calibrate's --scores cache")
    ap.add_argument("--lm-max-tokens", type=int, default=512)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--l2", type=float, default=D.PROBE_L2, help="the probe's L2 penalty")
    ap.add_argument("--json", help="also write the pooled figures here")
    args = ap.parse_args(argv)
    rows = C.scored_rows(C.load_labeled(args.labeled), "default", args.lm_max_tokens, [], args.scores)
    y = np.array([r["y"] for r in rows])
    pooled = ablation(rows, args.jobs, args.l2)
    gens = sorted({r["generator"] for r in rows if r["y"] and r.get("generator")})
    out = {}
    print(f"\nleave-domains-out, pooled ({len(rows)} documents); AUROC / TPR at 1% FPR / TPR at 5% FPR")
    for way, s in pooled.items():
        out[way] = {}
        for g in gens:
            m = np.isfinite(s) & np.array([r["y"] == 0 or r.get("generator") == g for r in rows])
            out[way][g] = _line(y[m], s[m])
        m = np.isfinite(s)
        out[way]["everything"] = _line(y[m], s[m])
        print(f"{way:18s} " + "  ".join(f"{g}: {v}" for g, v in out[way].items() if g in ("claude-agent", "everything")))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2, sort_keys=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
