"""Two held-out checks of the shipped detector's recipe that `make detector` does not make
(issue 13; measured, not shipped: the README says what they found).

    python models/training/transfer_checks.py bands [--classifier-cache FILE]
    python models/training/transfer_checks.py nap   [--classifier-cache FILE] [--k 0,2,4,8]

Both build the corpus, the held-out splits and the per-split fastText classifier exactly as
`make detector` does (`build_detector.load`, `calibration.held_out_splits`,
`build_detector.classifier_per_split`: about 5 minutes on 2 cores, then cached in FILE).

`bands`: does the shipped threshold rule keep its promise on short texts? The hidden sets of
issue 13 flagged short human genres (reviews, personal messages) most. For the shipped
candidate (`models/shipped/calibration.json`, `selection.full.chosen`), every human source's
held-out scores are put in word-count bands (`evaluate`'s `length_bands`) and the share flagged
is counted two ways: at the threshold the *other* human sources give (cross-fitted, as the rule
is checked) and at the rule's own threshold. Per held-out family and band: the share of its
machine texts over that threshold, and AUROC against the held-out humans of the same band.

`nap`: nuisance-attribute projection of the probe (as in speaker verification: remove the
directions along which the training sources' centroids differ within a class, i.e. genre and
generator identity, so the probe can only use what all sources share). The directions are
fitted on each split's training rows only, in the standardised hidden state; `--mode human`
uses the human sources' centroids, `both` the synthetic sources' too. Prints, per k, the worst
three held-out AUROCs over the splits `make detector` chooses by and each family's AUROC / TPR
at 1% FPR, with the classifier at weight 0 and 1 (the shipped weight).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

import build_detector as BD

from collapseguard.models import calibration as K
from collapseguard.models import detector as D
from collapseguard.models import detector_build as B
from collapseguard.pipeline.detector_cli import BAND_NAMES, length_bands

SHIPPED = os.path.join(os.path.dirname(BD.HERE), "shipped", "calibration.json")


def nuisance_directions(z: np.ndarray, source: np.ndarray, y: np.ndarray, k: int, mode: str) -> np.ndarray | None:
    """[d, k] orthonormal directions along which the sources' centroids differ most within
    their class (`mode` "human": human sources only; "both": each class's sources, centred per
    class); None for k = 0."""
    if k <= 0:
        return None
    parts = []
    for cls in (0, 1) if mode == "both" else (0,):
        names = sorted(set(source[y == cls]))
        mus = np.array([z[source == s].mean(axis=0) for s in names])
        parts.append(mus - mus.mean(axis=0))
    _, _, vt = np.linalg.svd(np.vstack(parts), full_matrices=False)
    return vt[:k].T


def _load(args):
    rows, emb = BD.load()
    corpus = B.corpus_from_rows(rows, emb)
    splits = K.held_out_splits(corpus)
    clf = BD.classifier_per_split(corpus, [r["text"] for r in rows], splits, args.jobs, args.classifier_cache)
    return rows, corpus, splits, clf


def shipped_candidate() -> K.Candidate:
    with open(SHIPPED, encoding="utf-8") as f:
        ch = json.load(f)["selection"]["full"]["chosen"]
    return K.Candidate(ch["name"], tuple(ch["features"]), ch["probe"], ch["l2"], ch["weighting"], ch["clf_weight"])


def bands(args) -> None:
    rows, corpus, splits, clf = _load(args)
    cand = shipped_candidate()
    held = K.held_out_scores(corpus, splits, [cand], clf)[cand.name]
    q, _ = K.choose_fpr(held.humans, B.TARGETS, B.MAX_HELD_OUT_FPR)
    t_rule = K.per_source_threshold(held.humans, q)
    band = length_bands([len(r["text"].split()) for r in rows])
    test_rows = {s.name: np.flatnonzero(s.test) for s in splits if s.kind == "human_source"}
    crossed, at_rule, hb, hs = [], [], [], []
    for h, sc in held.humans.items():
        t = K.per_source_threshold({k: v for k, v in held.humans.items() if k != h}, q)
        crossed.append(sc >= t)
        at_rule.append(sc >= t_rule)
        hb.append(band[test_rows[h]])
        hs += [h] * len(sc)
    crossed, at_rule, hb, hs = map(np.concatenate, (crossed, at_rule, hb, [np.array(hs)]))
    print(f"{cand.name}: per-source target {q}, threshold (logit) {t_rule:.3f}")
    print("| words | held-out human texts | sources | flagged, cross-fitted | flagged at the rule's threshold |")
    print("|---|---|---|---|---|")
    for b in BAND_NAMES:
        m = hb == b
        if m.any():
            print(f"| {b} | {m.sum()} | {len(set(hs[m]))} | {crossed[m].mean():.2%} ({crossed[m].sum()}) "
                  f"| {at_rule[m].mean():.2%} ({at_rule[m].sum()}) |")
    print("\nheld-out family x band: machine texts over the rule's threshold / AUROC against the band's held-out humans")
    for (kind, name), (y, s) in sorted(held.tests.items()):
        if kind != "family":
            continue
        split = next(x for x in splits if (x.kind, x.name) == (kind, name))
        tb = band[split.test]
        cells = []
        for b in BAND_NAMES:
            m = tb == b
            if (y[m] == 1).sum() >= 10 and (y[m] == 0).sum() >= 10:
                cells.append(f"{b}: n={int((y[m] == 1).sum())} {float((s[m][y[m] == 1] >= t_rule).mean()):.1%}"
                             f" / {D.auroc(y[m], s[m]):.3f}")
        print(f"{name}: " + " | ".join(cells))


def nap(args) -> None:
    _, c, splits, clf = _load(args)
    base = shipped_candidate()
    nf = len(base.features)
    for k in (int(x) for x in args.k.split(",")):
        tests, humans = {0.0: {}, 1.0: {}}, {0.0: {}, 1.0: {}}
        for s in splits:
            x = K._inputs(c, base, s.train)
            mean, std = D.standardise_fit(x)
            z = D.standardise(x, mean, std)
            u = nuisance_directions(z[:, nf:], c.source[s.train], c.y[s.train], k, args.mode)
            zt = D.standardise(K._inputs(c, base, s.test), mean, std)
            if u is not None:
                z[:, nf:] -= (z[:, nf:] @ u) @ u.T
                zt[:, nf:] -= (zt[:, nf:] @ u) @ u.T
            coef, b = D.fit_logistic(z, c.y[s.train].astype(float), l2=base.l2,
                                     sample_weight=K.row_weights(c, s.train, base.weighting))
            head = zt @ coef + b
            for w in tests:
                st = head + w * np.nan_to_num(clf[(s.kind, s.name)][s.test])
                if s.kind == "human_source":
                    humans[w][s.name] = st
                else:
                    tests[w][(s.kind, s.name)] = (c.y[s.test], st)
        for w in tests:
            ho = {"x": K.HeldOut(tests[w], humans[w])}
            keys = K.informative(ho)
            worst = sorted(D.auroc(*tests[w][key]) for key in keys)
            fams = " ".join(f"{n}:{D.auroc(*v):.3f}/{D.metrics(*v)['tpr_at_1pct_fpr']:.2f}"
                            for (kind, n), v in sorted(tests[w].items()) if kind == "family")
            _, per = K.choose_fpr(humans[w], B.TARGETS, B.MAX_HELD_OUT_FPR)
            print(f"{args.mode} k={k} clf{w:g}: worst {worst[0]:.3f} / {worst[1]:.3f} / {worst[2]:.3f} | {fams} "
                  f"| worst human source flagged {max(per.values()):.2%}", flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("command", choices=("bands", "nap"))
    ap.add_argument("--classifier-cache", help="pickle of the per-split classifier scores (made if missing)")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--k", default="0,2,4,8", help="nap: numbers of directions removed")
    ap.add_argument("--mode", choices=("human", "both"), default="human", help="nap: whose centroids")
    args = ap.parse_args(argv)
    {"bands": bands, "nap": nap}[args.command](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
