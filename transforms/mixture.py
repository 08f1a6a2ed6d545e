"""The training mix in numbers: DIR/mixture.json. Pure functions and two CombineFns.

- `MixtureStats` sums documents, tokens (n_words) and weighted tokens (sample_weight * n_words)
  per stratum. Weighted tokens are counted as Python ints in micro-token units
  (round(weight * n_words * 1e6)), so the sums are exact and identical for any merge order
  (float sums are not associative).
- `RareCoverageSample` keeps a bounded, deterministic sample of documents (the K smallest
  sha256(salt, id)) with their rare-word sets, and `expected_rare_coverage` estimates how many
  distinct rare words a token budget covers when documents are drawn in proportion to their
  sample_weight versus uniformly (see its docstring for the estimator).
- `build_mixture` assembles mixture.json: tokens and weighted tokens per stratum, the effective
  synthetic share against its ceiling (Dohmatob et al., "Strong Model Collapse", ICLR 2025) and
  the rare-word coverage (Shumailov et al., Nature 2024: the tail goes first).

Tokens are `n_words` throughout (see weights.py).
"""

from __future__ import annotations

import math
from typing import Iterable, Mapping, Sequence

import apache_beam as beam

from collapseguard.core.hashing import salted_int
from collapseguard.core.schema import ALL_OUTPUTS, HUMAN_STRATA, SYNTHETIC_STRATA, TRAINING_STRATA
from collapseguard.transforms.weights import synthetic_weight

MIXTURE_VERSION = 1
UNITS = 10**6  # weighted tokens are summed as integers of 1e-6 tokens
COVERAGE_SALT = "collapseguard/rare-coverage-sample/v1"
DEFAULT_BUDGETS = (0.01, 0.1)
# Tolerance of the ceiling check: each document's weighted tokens are rounded to 1e-6 tokens.
SHARE_TOLERANCE = 1e-9


def weighted_units(n_words: int, weight: float) -> int:
    """weight * n_words in integer micro-tokens (exact to sum, order-free)."""
    return int(round(float(weight) * int(n_words) * UNITS))


def _ordered(keys: Iterable[str]) -> list[str]:
    known = [k for k in ALL_OUTPUTS if k in keys]
    return known + sorted(k for k in keys if k not in ALL_OUTPUTS)


class MixtureStats(beam.CombineFn):
    """(stratum, n_words, sample_weight) -> {"documents", "tokens", "weighted_tokens"}, each
    {stratum: value} in the manifest's stratum order. Accumulator: {stratum: [docs, tokens,
    weighted micro-tokens]}, all ints."""

    def create_accumulator(self):
        return {}

    def add_input(self, acc, element):
        stratum, n_words, weight = element
        row = acc.setdefault(stratum, [0, 0, 0])
        row[0] += 1
        row[1] += int(n_words or 0)
        row[2] += weighted_units(n_words or 0, weight or 0.0)
        return acc

    def merge_accumulators(self, accs):
        out: dict[str, list[int]] = {}
        for acc in accs:
            for stratum, row in acc.items():
                o = out.setdefault(stratum, [0, 0, 0])
                for i in range(3):
                    o[i] += row[i]
        return out

    def extract_output(self, acc):
        keys = _ordered(acc)
        return {
            "documents": {k: acc[k][0] for k in keys},
            "tokens": {k: acc[k][1] for k in keys},
            "weighted_tokens": {k: acc[k][2] / UNITS for k in keys},
        }


def human_and_synthetic_tokens(stats: Mapping) -> tuple[float, int]:
    """(H, S) for `weights.synthetic_weight` from a MixtureStats output computed with the human
    weights (human strata: human_weight; others anything): H = weighted tokens of the human
    strata, S = tokens of the synthetic strata."""
    wt, tok = stats.get("weighted_tokens", {}), stats.get("tokens", {})
    h = sum(int(round(wt.get(s, 0.0) * UNITS)) for s in HUMAN_STRATA) / UNITS
    return h, sum(int(tok.get(s, 0)) for s in SYNTHETIC_STRATA)


def build_mixture(stratum_tokens: Mapping[str, int], stratum_weighted_tokens: Mapping[str, float],
                  rare_coverage: Mapping | None, ceiling: float) -> dict:
    """mixture.json. Shares are over the training strata (anchor and review have weight 0 and
    are listed for completeness). `under_ceiling` allows SHARE_TOLERANCE for the 1e-6-token
    rounding of each document's weighted tokens."""
    keys = _ordered(set(stratum_tokens) | set(stratum_weighted_tokens))
    strata = {}
    for k in keys:
        strata[k] = {"tokens": int(stratum_tokens.get(k, 0)),
                     "weighted_tokens": round(float(stratum_weighted_tokens.get(k, 0.0)), 6)}
    train = [k for k in keys if k in TRAINING_STRATA]
    tokens_total = sum(strata[k]["tokens"] for k in train)
    weighted_total = math.fsum(strata[k]["weighted_tokens"] for k in train)
    syn_tokens = sum(strata[k]["tokens"] for k in train if k in SYNTHETIC_STRATA)
    syn_weighted = math.fsum(strata[k]["weighted_tokens"] for k in train if k in SYNTHETIC_STRATA)
    for k in keys:
        in_mix = k in TRAINING_STRATA and weighted_total > 0
        strata[k]["weighted_share"] = round(strata[k]["weighted_tokens"] / weighted_total, 9) if in_mix else 0.0
    share = syn_weighted / weighted_total if weighted_total > 0 else 0.0
    return {
        "mixture_version": MIXTURE_VERSION,
        "token_unit": "n_words",
        "strata": strata,
        "training_tokens": tokens_total,
        "training_weighted_tokens": round(weighted_total, 6),
        "synthetic_tokens": syn_tokens,
        "synthetic_weighted_tokens": round(syn_weighted, 6),
        "synthetic_share_unweighted": round(syn_tokens / tokens_total, 9) if tokens_total else 0.0,
        "synthetic_share": round(share, 12),
        "ceiling": float(ceiling),
        "under_ceiling": share <= float(ceiling) + SHARE_TOLERANCE,
        "rare_coverage": dict(rare_coverage) if rare_coverage else None,
    }


# --- expected rare-word coverage ------------------------------------------------------------


def sample_key(doc_id: str, salt: str = COVERAGE_SALT) -> int:
    return salted_int(salt, doc_id)


def inclusion_probabilities(sizes: Sequence[int], weights: Sequence[float], budget: float) -> list[float]:
    """p_i = min(1, c * w_i) with sum(p_i * n_i) = budget (water-filling; exact, deterministic).

    Poisson sampling with these probabilities draws documents in proportion to their weight and
    spends `budget` tokens in expectation. Weight 0 gives p = 0; a budget at or over the weighted
    documents' tokens gives them all p = 1.
    """
    idx = [i for i in range(len(sizes)) if weights[i] > 0 and sizes[i] > 0]
    p = [0.0] * len(sizes)
    if budget <= 0 or not idx:
        return p
    if budget >= sum(sizes[i] for i in idx):
        for i in idx:
            p[i] = 1.0
        return p
    idx.sort(key=lambda i: (-weights[i], i))
    clamped_tokens = 0  # tokens of the documents taken with p = 1 (the heaviest ones)
    rest = math.fsum(sizes[i] * weights[i] for i in idx)
    c = 0.0
    for j, i in enumerate(idx):
        c = (budget - clamped_tokens) / rest
        if c * weights[i] <= 1.0:
            break
        clamped_tokens += sizes[i]
        rest -= sizes[i] * weights[i]
        p[i] = 1.0
    for i in idx:
        if p[i] < 1.0:
            p[i] = min(1.0, c * weights[i])
    return p


def expected_distinct(rare_sets: Sequence[Sequence[str]], p: Sequence[float]) -> float:
    """E[distinct words covered] = sum over words v of 1 - prod_{docs i holding v} (1 - p_i)."""
    log_miss: dict[str, float] = {}
    for words, pi in zip(rare_sets, p):
        if pi <= 0:
            continue
        lm = -math.inf if pi >= 1.0 else math.log1p(-pi)
        for v in words:
            log_miss[v] = log_miss.get(v, 0.0) + lm
    return math.fsum(1.0 - math.exp(log_miss[v]) for v in sorted(log_miss))


def expected_rare_coverage(docs: Sequence[tuple], budgets: Sequence[float] = DEFAULT_BUDGETS) -> dict:
    """Expected distinct rare words covered at token budgets, weighted vs uniform sampling.

    Estimator. `docs` is a uniform random sample of the corpus (hash of id), each
    (stratum, n_words, sample_weight, rare_words). For a budget share f of the sample's
    training tokens T (documents of the training strata), every document is included
    independently (Poisson sampling):
    - uniform: p_i = f for every training document (expected tokens f*T);
    - weighted: p_i = min(1, c * sample_weight_i), c set so the expected tokens are f*T.
    The expected number of distinct rare words covered is sum_v [1 - prod_{i: v in R_i}(1 - p_i)]
    over the rare words v of the sampled documents. Being computed on a K-document sample, the
    counts describe a corpus of that sample's size (distinct counts do not scale linearly); the
    ratio weighted / uniform is the figure to read. One pass, bounded, deterministic.
    """
    docs = sorted(docs, key=lambda d: (d[0], -int(d[1]), float(d[2]), tuple(d[3])))  # order-free sums
    train = [d for d in docs if d[0] in TRAINING_STRATA]
    sizes = [int(d[1]) for d in train]
    total = sum(sizes)
    rare_sets = [d[3] for d in train]
    out = []
    for f in budgets:
        budget = f * total
        uniform = expected_distinct(rare_sets, [min(1.0, f)] * len(train))
        weighted = expected_distinct(rare_sets, inclusion_probabilities(sizes, [float(d[2]) for d in train], budget))
        out.append({"budget_share": f, "budget_tokens": round(budget, 3), "uniform": round(uniform, 3),
                    "weighted": round(weighted, 3), "ratio": round(weighted / uniform, 4) if uniform > 0 else None})
    return {
        "estimator": "poisson_inclusion_expected_distinct_v1",
        "docs_sampled": len(train),
        "sample_tokens": total,
        "rare_words_in_sample": len({v for s in rare_sets for v in s}),
        "budgets": out,
    }


class RareCoverageSample(beam.CombineFn):
    """(id, stratum, n_words, sample_weight, rare_words) -> expected_rare_coverage(...) output.

    Keeps the `max_docs` documents with the smallest (sha256(salt, id), id, ...) key, so the
    sample, and the output, do not depend on merge order; each document keeps at most
    `max_words` rare words (those with the smallest hashes), so the accumulator is bounded.
    Documents outside the training strata are not kept.
    """

    def __init__(self, max_docs: int = 2000, max_words: int = 256,
                 budgets: Sequence[float] = DEFAULT_BUDGETS, salt: str = COVERAGE_SALT):
        self._max_docs = max_docs
        self._max_words = max_words
        self._budgets = tuple(budgets)
        self._salt = salt

    def create_accumulator(self):
        return [0, []]  # [documents seen, entries]

    def _entry(self, element):
        doc_id, stratum, n_words, weight, rare = element
        rare = sorted(set(rare))
        if len(rare) > self._max_words:
            rare = sorted(sorted(rare, key=lambda w: (sample_key(w, self._salt), w))[: self._max_words])
        return (sample_key(str(doc_id), self._salt), str(doc_id), stratum, int(n_words or 0),
                float(weight or 0.0), tuple(rare))

    def _prune(self, entries):
        if len(entries) > self._max_docs:
            entries.sort()
            del entries[self._max_docs:]
        return entries

    def add_input(self, acc, element):
        acc[0] += 1
        if element[1] not in TRAINING_STRATA:
            return acc
        entry = self._entry(element)
        acc[1].append(entry)
        if len(acc[1]) >= 2 * self._max_docs:
            self._prune(acc[1])
        return acc

    def merge_accumulators(self, accs):
        seen, entries = 0, []
        for a in accs:
            seen += a[0]
            entries.extend(a[1])
            if len(entries) >= 2 * self._max_docs:
                self._prune(entries)
        return [seen, self._prune(entries)]

    def compact(self, acc):
        return [acc[0], self._prune(acc[1])]

    def extract_output(self, acc):
        entries = sorted(acc[1])[: self._max_docs]
        out = expected_rare_coverage([(e[2], e[3], e[4], e[5]) for e in entries], self._budgets)
        out["docs_seen"] = acc[0]
        return out


def synthetic_weighting(mixture: dict, ceiling: float) -> dict:
    """The one synthetic sample_weight from summed per-chunk mixture counts (integers)."""
    human_units = sum(mixture[s]["weighted_units"] for s in HUMAN_STRATA)
    synthetic_tokens = sum(mixture[s]["tokens"] for s in SYNTHETIC_STRATA)
    training_docs = sum(mixture[s]["documents"] for s in HUMAN_STRATA + SYNTHETIC_STRATA)
    return {"synthetic_weight": synthetic_weight(human_units / UNITS, synthetic_tokens, ceiling),
            "training_documents": training_docs}


class _Summing(beam.CombineFn):
    """A combiner whose accumulators are summed in place by `add_input` (integer counts: any
    merge order gives the same result)."""

    def merge_accumulators(self, accs):
        accs = list(accs)
        out = accs[0]
        for a in accs[1:]:
            self.add_input(out, a)
        return out

    def extract_output(self, acc):
        return acc


class SumMixture(_Summing):
    """Sums per-chunk mixture counts {stratum: {documents, tokens, weighted_units}} (ints)."""

    def create_accumulator(self):
        return {name: {"documents": 0, "tokens": 0, "weighted_units": 0} for name in ALL_OUTPUTS}

    def add_input(self, acc, mixture):
        for name, m in mixture.items():
            for k, v in m.items():
                acc[name][k] += v
        return acc


class SumMixturePairs(_Summing):
    """Per shard (CombinePerKey): sums its chunks' (mixture if kept, mixture if held) pairs, so
    the shard's audit picks one of two sums, never a chunk's rows."""

    def create_accumulator(self):
        return SumMixture().create_accumulator(), SumMixture().create_accumulator()

    def add_input(self, acc, pair):
        SumMixture().add_input(acc[0], pair[0])
        SumMixture().add_input(acc[1], pair[1])
        return acc
