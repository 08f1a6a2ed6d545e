"""Fitting the detector and judging it by held-out source (issue 13); pure numpy, no graph, no CLI.

A *source* is one way text was made (a human dataset x domain; a generator family x the dataset
it wrote for) and a *family* is who made a machine text (`models.families`). Folds cut inside
the sources a detector trained on overstate its transfer by about 0.2 AUROC, so every figure
here holds out whole sources:

- **family** splits: all of one family's texts, the human texts they were made from (same
  pair) and a fixed hash-chosen fifth of the other human pairs leave training together;
- **source** splits: the same for one synthetic source;
- **human source** splits: one human source, and every text made from it, leaves training; the
  figure is the share of it flagged at the threshold the rest of the data gives (the promise a
  threshold must keep on human text it never saw).

Candidates (`Candidate`: which scalar features, the probe's hidden state or not, penalty, how
rows are weighted, how much the fastText classifier's log-odds count) are compared by their
worst held-out source, then the next worst (leximin), never by pooled CV. The threshold rule
is chosen the same way: the largest per-source false-positive target whose worst held-out human
source stays within `max_held_out_fpr`.

The fitted detector is one linear logit: a head over standardised scalar features and the
standardised hidden state, plus `clf_weight` x the classifier's log-odds. The runtime
(`models.detector.Detector`) reads it as a probe (the hidden state's share of the logit) and a
head whose probe and classifier inputs enter with fixed coefficients (1 and `clf_weight`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Callable, Sequence

import numpy as np

from collapseguard.core.hashing import salted_digest
from collapseguard.models import detector as D

HUMAN = "human"
CALIBRATION_VERSION = 4  # 4: one joint logit, chosen and thresholded by held-out source
POOL_SALT = "cg-holdout-v1"  # which human pairs join every family/source test (a fifth)
P_CLIP = D._P_CLIP  # the classifier's probability, clipped before log-odds as at run time


@dataclass
class Corpus:
    """The training rows as columns. `features` maps a scalar feature to a float column and
    `embedding` is the pooled hidden state [n, d], both NaN where missing (imputed with the
    training mean, as the runtime does); `clf_train` marks the rows the fastText classifier may
    learn from."""

    y: np.ndarray
    source: np.ndarray
    family: np.ndarray
    pair: np.ndarray
    features: dict
    embedding: np.ndarray | None = None
    clf_train: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.y)

    @property
    def has_embedding(self) -> np.ndarray:
        return np.isfinite(self.embedding).all(axis=1)

    def matrix(self, names: Sequence[str]) -> np.ndarray:
        return np.column_stack([self.features[n] for n in names]) if names else np.zeros((len(self), 0))


@dataclass(frozen=True)
class Split:
    kind: str  # "family" | "source" | "human_source"
    name: str
    test: np.ndarray
    train: np.ndarray


@dataclass(frozen=True)
class Candidate:
    name: str
    features: tuple
    probe: bool
    l2: float = D.PROBE_L2
    weighting: str = "source"  # "class": classes weigh the same; "source": every source within its class too
    clf_weight: float = 0.0


def _fifth(key: str) -> bool:
    return int.from_bytes(salted_digest(POOL_SALT, key), "big") % 5 == 0


def held_out_splits(c: Corpus) -> list[Split]:
    """Every family, synthetic source and human source held out in turn (see the module doc)."""
    y = c.y.astype(bool)
    pool = ~y & np.array([_fifth(p) for p in c.pair])
    out = []

    def leave(kind, name, syn):
        paired = ~y & np.isin(c.pair, np.unique(c.pair[syn]))
        test = syn | paired | pool
        train = ~np.isin(c.pair, np.unique(c.pair[test])) & ~test
        out.append(Split(kind, name, test, train))

    for fam in sorted(set(c.family[y])):
        leave("family", fam, y & (c.family == fam))
    for src in sorted(set(c.source[y])):
        leave("source", src, y & (c.source == src))
    for src in sorted(set(c.source[~y])):
        test = c.source == src
        out.append(Split("human_source", src, test, ~np.isin(c.pair, np.unique(c.pair[test]))))
    return out


def row_weights(c: Corpus, train: np.ndarray, weighting: str) -> np.ndarray:
    """Per training row: each class sums to half the rows; with "source", each source within its
    class weighs the same (a 3,000-row source does not drown a 30-row one)."""
    y = c.y[train]
    w = np.ones(int(train.sum()))
    if weighting == "source":
        src = c.source[train]
        for s in np.unique(src):
            m = src == s
            w[m] = 1.0 / m.sum()
    elif weighting != "class":
        raise ValueError(f"unknown weighting {weighting!r}")
    for k in (0, 1):
        m = y == k
        if m.any():
            w[m] *= (len(y) / 2.0) / w[m].sum()
    return w


def _inputs(c: Corpus, cand: Candidate, rows: np.ndarray) -> np.ndarray:
    x = c.matrix(cand.features)[rows]
    if cand.probe:
        x = np.hstack([x, c.embedding[rows]])
    return x


def fit(c: Corpus, train: np.ndarray, cand: Candidate) -> dict:
    """The candidate's head (classifier excluded) fitted on the `train` rows."""
    x = _inputs(c, cand, train)
    mean, std = D.standardise_fit(x)  # NaN (missing) is left out, then imputed as the mean
    coef, b = D.fit_logistic(D.standardise(x, mean, std), c.y[train].astype(float), l2=cand.l2,
                             sample_weight=row_weights(c, train, cand.weighting))
    return {"mean": mean, "std": std, "coef": coef, "intercept": b}


def head_logits(c: Corpus, head: dict, cand: Candidate, rows: np.ndarray) -> np.ndarray:
    x = _inputs(c, cand, rows)
    return D.standardise(x, head["mean"], head["std"]) @ head["coef"] + head["intercept"]


def clf_logit(p) -> np.ndarray:
    """The classifier's P(synthetic) as log-odds, clipped as `detector._clf_logit` clips them."""
    p = np.clip(np.asarray(p, dtype=float), P_CLIP, 1.0 - P_CLIP)
    return np.log(p / (1.0 - p))


# --------------------------------------------------------------------------- thresholds


def per_source_threshold(scores_by_source: dict, fpr: float) -> float:
    """The smallest threshold that keeps every source's share at or over it within `fpr` (each
    source's own `threshold_at_fpr`, the largest of them)."""
    return max(D.threshold_at_fpr(v, fpr) for v in scores_by_source.values())


def cross_fitted_fpr(held_out_humans: dict, fpr: float) -> dict:
    """Per human source h: the share of its held-out scores at or over the threshold the *other*
    sources' held-out scores give (`per_source_threshold` at `fpr`). Neither the model that
    scored h nor the threshold applied to it saw h: the promise a threshold keeps on a human
    source it never met."""
    out = {}
    for h, sh in held_out_humans.items():
        others = {k: v for k, v in held_out_humans.items() if k != h}
        t = per_source_threshold(others, fpr)
        out[h] = round(float((sh >= t).mean()), 4)
    return out


# --------------------------------------------------------------------------- held-out figures


ClassifierJobs = Callable[[list[tuple[np.ndarray, np.ndarray]]], list[np.ndarray]]


def classifier_scores(c: Corpus, splits: Sequence[Split], run_jobs: ClassifierJobs) -> dict:
    """The classifier's log-odds of each split's test rows (NaN elsewhere), from a classifier
    trained on that split's training rows it may learn from: (kind, name) -> [n]."""
    jobs = [(s.train & c.clf_train, s.test) for s in splits]
    out = {}
    for s, p in zip(splits, run_jobs(jobs)):
        full = np.full(len(c), np.nan)
        full[s.test] = clf_logit(p)
        out[(s.kind, s.name)] = full
    return out


@dataclass
class HeldOut:
    """One candidate's held-out scores: per family/source split the test labels and scores, per
    human source its held-out scores."""

    tests: dict  # (kind, name) -> (y, scores)
    humans: dict  # source -> scores


def held_out_scores(c: Corpus, splits: Sequence[Split], cands: Sequence[Candidate],
                    clf_by_split: dict | None) -> dict:
    """Candidate name -> `HeldOut`. Candidates that differ only in `clf_weight` share one head
    fit per split."""
    out = {cd.name: HeldOut({}, {}) for cd in cands}
    bases: dict = {}
    for cd in cands:
        bases.setdefault((cd.features, cd.probe, cd.l2, cd.weighting), []).append(cd)
    for s in splits:
        clf = clf_by_split.get((s.kind, s.name)) if clf_by_split else None
        for group in bases.values():
            ht = head_logits(c, fit(c, s.train, group[0]), group[0], s.test)
            for cd in group:
                st = ht + cd.clf_weight * np.nan_to_num(clf[s.test]) if cd.clf_weight else ht
                if s.kind == "human_source":
                    out[cd.name].humans[s.name] = st
                else:
                    out[cd.name].tests[(s.kind, s.name)] = (c.y[s.test], st)
    return out


def tables(ho: HeldOut, threshold: float) -> dict:
    """{"family"|"source": {name: AUROC, TPR at 1%/5% FPR of its test humans, and TPR/FPR at
    `threshold`}}."""
    out: dict = {"family": {}, "source": {}}
    for (kind, name), (y, s) in ho.tests.items():
        m = D.metrics(y, s)
        m["tpr_at_threshold"] = round(float((s[y == 1] >= threshold).mean()), 4)
        m["fpr_at_threshold"] = round(float((s[y == 0] >= threshold).mean()), 4)
        out[kind][name] = m
    return out


def informative(held: dict, floor: float = 0.6) -> list:
    """The family/source splits most candidates detect (median AUROC >= `floor`). A split that
    candidates are near chance on cannot rank them: one candidate edging over the floor there
    (GPT-2-era continuations: 0.51-0.61) would make the choice chase noise. The others are
    reported, not used to choose."""
    keys = next(iter(held.values())).tests.keys()
    return [k for k in keys if float(np.median([D.auroc(*h.tests[k]) for h in held.values()])) >= floor]


def leximin_key(aurocs_worst_first: Sequence[float], step: float = 0.005) -> tuple:
    """Sort key (larger is better): the worst held-out AUROC first, then the next worst, each
    rounded down to `step` so differences below it do not decide."""
    return tuple(math.floor(a / step + 1e-9) for a in aurocs_worst_first)


def choose_fpr(held_out_humans: dict, targets: Sequence[float], max_fpr: float) -> tuple[float, dict]:
    """The loosest per-source target whose cross-fitted worst human source stays within
    `max_fpr` (the strictest target when none does), and that target's per-source figures."""
    last = None
    for q in sorted(targets, reverse=True):
        per = cross_fitted_fpr(held_out_humans, q)
        last = (q, per)
        if max(per.values()) <= max_fpr:
            return last
    return last


def select(c: Corpus, splits: Sequence[Split], cands: Sequence[Candidate], clf_by_split: dict | None,
           targets: Sequence[float], max_fpr: float) -> dict:
    """Every candidate's held-out scores; the chosen one (leximin over the informative held-out
    family and source AUROCs); its per-source false-positive target (`choose_fpr`) and the
    threshold that target gives on every human source's held-out scores (cross-fitted: each
    human source scored by a model that never saw it)."""
    held = held_out_scores(c, splits, cands, clf_by_split)
    keys = informative(held) or list(next(iter(held.values())).tests)  # none detected: all of them
    worst_first = {cd.name: sorted(D.auroc(*held[cd.name].tests[k]) for k in keys) for cd in cands}
    best = max(cands, key=lambda cd: (leximin_key(worst_first[cd.name]), -cands.index(cd)))
    q, per_source = choose_fpr(held[best.name].humans, targets, max_fpr)
    logit_t = per_source_threshold(held[best.name].humans, q)
    return {"candidate": best, "per_source_fpr": q, "human_source_fpr": per_source,
            "logit_threshold": logit_t, "held": held, "informative": keys, "worst_first": worst_first,
            "targets": list(targets), "max_fpr": max_fpr}


# --------------------------------------------------------------------------- the shipped form


def runtime_model(c: Corpus, head: dict, cand: Candidate, logit_threshold: float) -> tuple[dict, dict | None]:
    """(model, probe) in the form `models.detector.Detector` reads (calibration `models[...]`
    and `probe`), its logit shifted by `logit_threshold` so that the threshold is p = 0.5."""
    k = len(cand.features)
    names = list(cand.features)
    mean, std, coef = list(head["mean"][:k]), list(head["std"][:k]), list(head["coef"][:k])
    probe = None
    if cand.probe:
        probe = {"dim": int(c.embedding.shape[1]), "l2": cand.l2, "mean": _r(head["mean"][k:]),
                 "std": _r(head["std"][k:]), "coef": _r(head["coef"][k:]), "intercept": 0.0}
        names.append(D.PROBE_FEATURE)
        mean, std, coef = mean + [0.0], std + [1.0], coef + [1.0]
    if cand.clf_weight:
        names.append(D.CLF_LOGIT)
        mean, std, coef = mean + [0.0], std + [1.0], coef + [cand.clf_weight]
    # centred on the threshold: p_synthetic >= 0.5 is flagged. A threshold kept far out in the
    # tail (a logit of 13 or 55) would otherwise sit where p rounds to 1.0 and the decision is lost
    model = {"features": names, "mean": _r(mean), "std": _r(std), "coef": _r(coef),
             "intercept": round(float(head["intercept"]) - logit_threshold, 8), "threshold": 0.5,
             "logit_threshold": round(float(logit_threshold), 8)}
    return model, probe


def runtime_p(c: Corpus, model: dict, probe: dict | None, rows: np.ndarray, clf: np.ndarray | None) -> np.ndarray:
    """p_synthetic of `rows` as the runtime computes it from the shipped numbers."""
    cols = []
    for n in model["features"]:
        if n == D.PROBE_FEATURE:
            cols.append(D.probe_apply(probe, np.nan_to_num(c.embedding[rows]), c.has_embedding[rows]))
        elif n == D.CLF_LOGIT:
            cols.append(np.asarray(clf, dtype=float))
        else:
            cols.append(c.features[n][rows])
    x = np.column_stack(cols)
    return np.round(D.predict_model(model, x), 6)


def _r(v) -> list:
    return [round(float(a), 8) for a in v]


def candidate_dict(cand: Candidate) -> dict:
    d = asdict(cand)
    d["features"] = list(cand.features)
    return d


# --------------------------------------------------------------------------- the whole fit


def fit_shipped(c: Corpus, chosen: dict) -> tuple[dict, dict | None]:
    """The chosen candidate fitted on every row, with the cross-fitted threshold."""
    cand = chosen["candidate"]
    head = fit(c, np.ones(len(c), dtype=bool), cand)
    return runtime_model(c, head, cand, chosen["logit_threshold"])


def selection_record(chosen: dict) -> dict:
    """What calibration.json keeps of a selection: the chosen candidate, its threshold rule and
    held-out figures (per family, source and human source), every candidate's worst figures."""
    name = chosen["candidate"].name
    held = chosen["held"]
    t = chosen["logit_threshold"]
    per = chosen["human_source_fpr"]
    return {
        "chosen": candidate_dict(chosen["candidate"]),
        "threshold_rule": {
            "per_source_fpr": chosen["per_source_fpr"], "tried": chosen["targets"],
            "max_held_out_fpr": chosen["max_fpr"], "worst_held_out_human_source_fpr": max(per.values()),
            "kept": max(per.values()) <= chosen["max_fpr"], "logit": round(t, 6),
            "how": "each human source's held-out scores (from a model that never saw it); the largest of "
                   "their per-source thresholds at per_source_fpr; checked per source against the "
                   "threshold the other sources give"},
        "held_out": {**tables(held[name], t),
                     "human_source": {h: {"n": int(len(held[name].humans[h])), "fpr": per[h]} for h in sorted(per)}},
        "used_to_choose": [f"{k}:{n}" for k, n in chosen["informative"]],
        "candidates": {k: {"aurocs_worst_first": [round(a, 4) for a in v], "worst_auroc": round(v[0], 4)}
                       for k, v in chosen["worst_first"].items()},
    }
