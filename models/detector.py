"""The detector at run time: p_synthetic from one calibrated logit over standardised signals.

Score, then decide: `p_synthetic` is a column; the threshold is applied afterwards (provenance)
and recorded. How the numbers in calibration.json are chosen and fitted (held out by source and
generator family, never by folds inside a source) is `models.calibration`; `models.detector_build`
writes them.

A model (`calibration["models"]["full"]`, or `"no_lm"` for rows without LM signals) is a head:
standardised features (missing ones imputed with the training mean, i.e. 0 after
standardising), coefficients, intercept, threshold. Its features are named columns of the row:
- LM: mean log-prob, Fast-DetectGPT curvature, mean predictive entropy, and their ratio
  `lm_logprob_entropy_ratio` = -mean log-prob / mean entropy (observed surprise against the
  model's own expected surprise: the single-model form of Binoculars, Hans et al. 2024);
- the probe: `lm_probe_logit`, the pooled hidden state's (`lm_embedding`) share of the logit
  (`calibration["probe"]`, a linear map over the standardised hidden state);
- cheap: TTR, burstiness, window entropy, repetition, rare-word fraction;
- the fastText classifier's log-odds (`clf_logit`, from `clf_p_synthetic`).
Not used, on purpose: length, how a text ends, its opening words (shortcuts of the training
sets, not properties of machine text). Older calibrations whose model holds several `heads`
(combined by max) still load.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from typing import Sequence

import numpy as np

PROBE_FEATURE = "lm_probe_logit"
EMBEDDING = "lm_embedding"
LM_FEATURES = ("lm_mean_logprob", "lm_fdg_curvature", "lm_mean_entropy", "lm_logprob_entropy_ratio",
               PROBE_FEATURE)
CHEAP_FEATURES = ("ttr", "burstiness", "token_entropy_bits", "repetition", "rare_word_fraction")
CLF_FEATURE = "clf_p_synthetic"
CLF_LOGIT = "clf_logit"
FEATURES = LM_FEATURES + CHEAP_FEATURES + (CLF_LOGIT,)
NO_LM_FEATURES = CHEAP_FEATURES + (CLF_LOGIT,)
PROBE_L2 = 10.0
_P_CLIP = 1e-6


def _ratio(row: dict):
    lp, ent = row.get("lm_mean_logprob"), row.get("lm_mean_entropy")
    return (-lp / ent) if (lp is not None and ent) else None


def _clf_logit(row: dict):
    """The classifier's probability as log-odds (clipped to [1e-6, 1 - 1e-6]): a probability
    near 0 or 1 squeezes the differences that matter at a 1% false-positive rate; measured
    (leave-domains-out, chat vs human): TPR at 1% FPR 0.68 from p, 0.71 from log-odds."""
    p = row.get(CLF_FEATURE)
    if p is None or not isinstance(p, (int, float)) or not math.isfinite(p):
        return None
    p = min(max(float(p), _P_CLIP), 1.0 - _P_CLIP)
    return math.log(p / (1.0 - p))


# Features computed from other columns, always from their current values.
DERIVED = {"lm_logprob_entropy_ratio": _ratio, CLF_LOGIT: _clf_logit}


def derived_features(row: dict) -> dict:
    """Adds features computed from other columns (in place) and returns the row."""
    for name, fn in DERIVED.items():
        row[name] = fn(row)
    return row


def feature_matrix(rows: Sequence[dict], names: Sequence[str]) -> np.ndarray:
    x = np.full((len(rows), len(names)), np.nan)
    for i, r in enumerate(rows):
        for j, n in enumerate(names):
            v = DERIVED[n](r) if n in DERIVED else r.get(n)
            if v is not None and isinstance(v, (int, float)) and math.isfinite(v):
                x[i, j] = float(v)
    return x


# --------------------------------------------------------------------------- the probe


def embedding_matrix(rows: Sequence[dict], dim: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(E [n, dim] float64, ok [n] bool): each row's `lm_embedding`; rows without one (or of
    another width than `dim`, default the first one's) are zeros with ok False."""
    if dim is None:
        dim = next((len(r[EMBEDDING]) for r in rows if r.get(EMBEDDING) is not None), 0)
    e = np.zeros((len(rows), dim))
    ok = np.zeros(len(rows), dtype=bool)
    for i, r in enumerate(rows):
        v = r.get(EMBEDDING)
        if v is not None and len(v) == dim and dim:
            e[i] = np.asarray(v, dtype=float)
            ok[i] = np.isfinite(e[i]).all()
    e[~ok] = 0.0
    return e, ok


def probe_apply(probe: dict, e: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """The probe's log-odds per embedding row (rounded to 6 decimals); NaN where not `ok`."""
    return np.where(ok, np.round(head_logits(probe, e), 6), np.nan)


def probe_logits(probe: dict, rows: Sequence[dict]) -> list[float | None]:
    """The probe's log-odds per row; None where the row has no embedding of the probe's width."""
    e, ok = embedding_matrix(rows, probe["dim"])
    return [float(v) if k else None for v, k in zip(probe_apply(probe, e, ok), ok)]


def standardise_fit(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = np.nanmean(np.where(np.isfinite(x), x, np.nan), axis=0)
    mean = np.where(np.isfinite(mean), mean, 0.0)
    std = np.nanstd(x, axis=0)
    std = np.where(np.isfinite(std) & (std > 1e-12), std, 1.0)
    return mean, std


def standardise(x: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    z = (x - mean) / std
    return np.where(np.isfinite(z), z, 0.0)  # missing -> the training mean


def fit_logistic(z: np.ndarray, y: np.ndarray, l2: float = 1.0, iters: int = 50,
                 sample_weight: np.ndarray | None = None) -> tuple[np.ndarray, float]:
    """L2-regularised logistic regression by Newton's method (IRLS); returns (coef, intercept).
    `sample_weight` scales each row's term of the log-likelihood (default 1)."""
    n, d = z.shape
    sw = np.ones(n) if sample_weight is None else np.asarray(sample_weight, dtype=float)
    xb = np.hstack([z, np.ones((n, 1))])
    w = np.zeros(d + 1)
    reg = np.full(d + 1, l2)
    reg[-1] = 0.0  # no penalty on the intercept
    for _ in range(iters):
        p = 1.0 / (1.0 + np.exp(-xb @ w))
        grad = xb.T @ (sw * (p - y)) + reg * w
        h = (xb * (sw * p * (1 - p))[:, None]).T @ xb + np.diag(reg) + 1e-9 * np.eye(d + 1)
        step = np.linalg.solve(h, grad)
        w -= step
        if np.max(np.abs(step)) < 1e-8:
            break
    return w[:-1], float(w[-1])


def threshold_at_fpr(human_scores: Sequence[float], target_fpr: float) -> float:
    """Smallest threshold t with (human scores >= t) / n <= target_fpr (scores are p_synthetic).

    With n human scores, at most floor(target_fpr * n) of them may reach the threshold; t sits
    just above the next one, so the empirical FPR never exceeds the target.
    """
    s = np.sort(np.asarray(human_scores, dtype=float))[::-1]
    if len(s) == 0:
        return 1.0
    k = int(math.floor(target_fpr * len(s)))  # humans allowed at or over t
    if k >= len(s):
        return float(s[-1])
    return float(np.nextafter(s[k], np.inf))


# --------------------------------------------------------------------------- metrics


def auroc(y: Sequence[int], scores: Sequence[float]) -> float | None:
    """Area under the ROC curve via the rank-sum (Mann-Whitney U), ties counted half."""
    y = np.asarray(y, dtype=int)
    s = np.asarray(scores, dtype=float)
    pos, neg = s[y == 1], s[y == 0]
    if len(pos) == 0 or len(neg) == 0:
        return None
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s))
    sorted_s = s[order]
    i = 0
    while i < len(s):  # average ranks over ties
        j = i
        while j + 1 < len(s) and sorted_s[j + 1] == sorted_s[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    u = ranks[y == 1].sum() - len(pos) * (len(pos) + 1) / 2.0
    return float(u / (len(pos) * len(neg)))


def tpr_at_fpr(y: Sequence[int], scores: Sequence[float], fpr: float) -> float | None:
    """TPR at the threshold that keeps the empirical FPR <= fpr on these negatives."""
    y = np.asarray(y, dtype=int)
    s = np.asarray(scores, dtype=float)
    if (y == 1).sum() == 0 or (y == 0).sum() == 0:
        return None
    t = threshold_at_fpr(s[y == 0], fpr)
    return float((s[y == 1] >= t).mean())


def precision_recall(y: Sequence[int], scores: Sequence[float], threshold: float) -> dict:
    y = np.asarray(y, dtype=int)
    flagged = np.asarray(scores, dtype=float) >= threshold
    tp = int((flagged & (y == 1)).sum())
    fp = int((flagged & (y == 0)).sum())
    fn = int((~flagged & (y == 1)).sum())
    return {"precision": tp / (tp + fp) if tp + fp else None, "recall": tp / (tp + fn) if tp + fn else None,
            "fpr": fp / int((y == 0).sum()) if (y == 0).sum() else None}


def metrics(y, scores, threshold: float | None = None) -> dict:
    out = {"n": int(len(y)), "n_synthetic": int(np.sum(y)), "auroc": auroc(y, scores),
           "tpr_at_1pct_fpr": tpr_at_fpr(y, scores, 0.01), "tpr_at_5pct_fpr": tpr_at_fpr(y, scores, 0.05)}
    if threshold is not None:
        out.update(precision_recall(y, scores, threshold))
    return _round(out)


def _round(obj):
    if isinstance(obj, float):
        return round(obj, 4)
    if isinstance(obj, dict):
        return {k: _round(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_round(v) for v in obj]
    return obj


# --------------------------------------------------------------------------- grouping


_WORDS = re.compile(r"\w+")


def pair_group(row: dict) -> str:
    """Group key that keeps a human text and the synthetic text continuing it together.

    Rows may carry an explicit `group`; otherwise the first 12 words (labeled-dev's synthetic
    texts start with the first ~20-30 words of their human pair).
    """
    if row.get("group"):
        return str(row["group"])
    words = _WORDS.findall(row["text"].lower())[:12]
    return "w:" + hashlib.sha1(" ".join(words).encode("utf-8")).hexdigest()[:16]


# --------------------------------------------------------------------------- model


class Detector:
    """Calibration loaded from JSON: p_synthetic for a record, and the decision threshold."""

    def __init__(self, calibration: dict):
        self.cal = calibration
        self.threshold = float(calibration["threshold"])
        self.probe = calibration.get("probe")  # None: a calibration without the hidden-state probe
        # how the classifier that this calibration was fitted with reads text (models.classifier)
        self.classifier_view = str(calibration.get("classifier_view", "words"))

    @classmethod
    def load(cls, path: str) -> "Detector":
        import fsspec

        with fsspec.open(path, "rt", encoding="utf-8") as f:
            return cls(json.load(f))

    def _model(self, has_lm: bool) -> dict:
        return self.cal["models"]["full" if has_lm else "no_lm"]

    def probe_logits(self, rows: Sequence[dict]) -> list[float | None]:
        if self.probe is None:
            return [None] * len(rows)
        return probe_logits(self.probe, rows)

    def predict(self, rows: Sequence[dict]) -> list[float | None]:
        """p_synthetic per row (rows carry `lm_probe_logit` already when the model uses it)."""
        out: list[float | None] = [None] * len(rows)
        for has_lm in (True, False):
            idx = [i for i, r in enumerate(rows) if (r.get("lm_mean_logprob") is not None) == has_lm]
            if not idx:
                continue
            m = self._model(has_lm)
            sub = [derived_features(dict(rows[i])) for i in idx]
            p = predict_model(m, feature_matrix(sub, m["features"]))
            for i, v in zip(idx, p):
                out[i] = round(float(v), 6)
        return out

    def threshold_for(self, has_lm: bool) -> float:
        return float(self._model(has_lm)["threshold"])


def fit_head(x: np.ndarray, y: np.ndarray, l2: float = 1.0, balanced: bool = True) -> dict:
    mean, std = standardise_fit(x)
    w = None
    if balanced and 0 < y.sum() < len(y):
        w = np.where(y == 1, (y == 0).sum() / y.sum(), 1.0)  # each class weighs the same
    coef, intercept = fit_logistic(standardise(x, mean, std), y, l2=l2, sample_weight=w)
    return {"mean": mean.round(8).tolist(), "std": std.round(8).tolist(), "coef": coef.round(8).tolist(),
            "intercept": round(intercept, 8)}


def head_logits(head: dict, x: np.ndarray) -> np.ndarray:
    """A fitted head's log-odds for the rows of `x` (missing values imputed as in the fit)."""
    z = standardise(x, np.array(head["mean"]), np.array(head["std"]))
    return z @ np.array(head["coef"]) + head["intercept"]


def predict_head(head: dict, x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-head_logits(head, x)))


def predict_model(model: dict, x: np.ndarray) -> np.ndarray:
    if "heads" in model:
        return np.max([predict_head(h, x) for _, h in sorted(model["heads"].items())], axis=0)
    return predict_head(model, x)
