"""Sample weights: oversample the human tail, cap the synthetic share. Pure functions.

Two ideas from the model-collapse literature, each a separate function:

- Tail oversampling (human strata). Recursive training forgets the low-frequency tail of the
  distribution first (Shumailov et al., "AI models collapse when trained on recursively
  generated data", Nature 2024). A human document dense in rare words is the part of the
  corpus a collapsing model loses, so it gets a larger sample weight: `human_weight` rises with
  the document's `rare_word_density` (distinct rare words per token, signals.py) from 1 to `cap`
  (default 4) over a ramp anchored on the run's own human documents (`rarity_ramp`: by default
  their 70th and 80th density percentiles), times an optional per-source multiplier, the product
  capped again. Capped, so no single odd document (OCR noise, a word list) dominates the mix.
- Synthetic ceiling (synthetic strata). Even a small fraction of synthetic data can break
  scaling (Dohmatob et al., "Strong Model Collapse", ICLR 2025). Every synthetic document gets
  one scalar weight `synthetic_weight(H, S, ceiling)` so that the weighted token share of
  synthetic text, w*S / (H + w*S), stays at or under the ceiling (default 0.001).
- `anchor` and `review` documents get weight 0: the anchor is never trained on, review is held.

Tokens are `n_words` (whitespace words of the whole document) everywhere in this module and in
`mixture.py`: H = sum of human_weight * n_words over the human strata, S = sum of n_words over
the synthetic strata.

Rarity per document (`doc_rarity`) uses wordfreq's tables (Speer 2022) through a small
per-process cache (`RarityTables`, loaded lazily; no module-level state): `mean_zipf` is the
mean Zipf frequency of the document's content-word tokens, `rare_words` its distinct rare words.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Mapping, Sequence

import apache_beam as beam

from collapseguard.core.schema import HUMAN_STRATA, SYNTHETIC_STRATA, WEIGHT_VERSION, ZERO_WEIGHT_STRATA  # noqa: F401 - re-exported
from collapseguard.transforms.base import merge_histograms

TRAINING_STRATA_ALL = HUMAN_STRATA + SYNTHETIC_STRATA

DENSITY_BINS = 10_000  # histogram bins per unit of rare_word_density (0.0001 wide) for the run's ramp
RAMPS = ("auto", "fixed")
SHARE_MARGIN = 1e-7  # relative, below the synthetic ceiling (see synthetic_weight)

# fastText lid.176 labels whose wordfreq table has another name.
_LANG_ALIASES = {"no": "nb", "tl": "fil"}
# Written without spaces between words: `signals.tokenize` returns runs of characters, not
# words, so a word-frequency lookup would be meaningless (wordfreq itself needs jieba/MeCab).
_UNSEGMENTED = frozenset({"zh", "ja"})


@dataclass(frozen=True)
class WeightsConfig:
    """Sample-weight settings. Frozen and picklable; validated when built.

    - cap: the largest weight any document gets (rarity ramp and source multiplier included).
    - synthetic_ceiling: the most the synthetic strata may weigh, as a share of weighted tokens.
    - source_multipliers: {source: multiplier} (a mapping or (source, mult) pairs; stored as a
      sorted tuple of pairs so the config stays hashable). Applies to human strata only.
    - ramp: "auto" (default) puts the rarity ramp between the `ramp_start_quantile` and
      `ramp_full_quantile` of `rare_word_density` over the run's human documents; with fewer
      than `min_calibration_documents` of them, or with "fixed", it runs from
      `rare_density_start` to `rare_density_full` (see `rarity_ramp`, `rarity_weight`).
    - rare_zipf, stopwords_top_n, min_rare_len: what `doc_rarity` calls rare / a stopword.
    """

    cap: float = 4.0
    synthetic_ceiling: float = 0.001
    source_multipliers: tuple = ()
    ramp: str = "auto"
    ramp_start_quantile: float = 0.7
    ramp_full_quantile: float = 0.8
    min_calibration_documents: int = 100
    rare_density_start: float = 0.035
    rare_density_full: float = 0.045
    rare_zipf: float = 3.0
    stopwords_top_n: int = 100
    min_rare_len: int = 3

    def __post_init__(self):
        pairs = self.source_multipliers
        if isinstance(pairs, Mapping):
            pairs = pairs.items()
        pairs = tuple(sorted((str(s), float(m)) for s, m in pairs))
        object.__setattr__(self, "source_multipliers", pairs)
        if not (math.isfinite(self.cap) and self.cap >= 1.0):
            raise ValueError(f"weights.cap: must be a finite number >= 1, got {self.cap!r}")
        if not 0.0 <= self.synthetic_ceiling <= 1.0:
            raise ValueError(f"weights.synthetic_ceiling: must be in [0, 1], got {self.synthetic_ceiling!r}")
        for source, mult in pairs:
            if not (math.isfinite(mult) and mult >= 0.0):
                raise ValueError(f"weights.source_multipliers[{source!r}]: must be >= 0, got {mult!r}")
        if len({s for s, _ in pairs}) != len(pairs):
            raise ValueError("weights.source_multipliers: a source is listed twice")
        if self.ramp not in RAMPS:
            raise ValueError(f"weights.ramp: must be one of {list(RAMPS)}, got {self.ramp!r}")
        if not 0.0 <= self.ramp_start_quantile < self.ramp_full_quantile <= 1.0:
            raise ValueError("weights: need 0 <= ramp_start_quantile < ramp_full_quantile <= 1")
        if self.min_calibration_documents < 1:
            raise ValueError("weights.min_calibration_documents: must be >= 1")
        if not 0.0 <= self.rare_density_start < self.rare_density_full <= 1.0:
            raise ValueError("weights: need 0 <= rare_density_start < rare_density_full <= 1")
        if self.stopwords_top_n < 0 or self.min_rare_len < 1:
            raise ValueError("weights: stopwords_top_n must be >= 0 and min_rare_len >= 1")

    def multiplier(self, source: str | None) -> float:
        for s, m in self.source_multipliers:
            if s == source:
                return m
        return 1.0


# --- rarity -------------------------------------------------------------------------------


class RarityTables:
    """wordfreq tables per language, loaded on first use and kept for the process.

    Build one per worker (e.g. in `DoFn.setup`); it holds, per language, the frequency dict and
    the stopword set (the language's `stopwords_top_n` most frequent words). Languages wordfreq
    does not cover (and unsegmented scripts) give None.
    """

    def __init__(self, stopwords_top_n: int = 100):
        self._top_n = stopwords_top_n
        self._wordfreq = None
        self._available: frozenset | None = None
        self._tables: dict[str, tuple[dict, frozenset] | None] = {}
        self._common: dict[tuple[str, float], frozenset | None] = {}

    def lookup(self, lang: str | None) -> tuple[dict, frozenset] | None:
        """(frequency dict, stopwords) for `lang`, or None where rarity is undefined."""
        if not lang:
            return None
        lang = _LANG_ALIASES.get(lang, lang)
        if lang in self._tables:
            return self._tables[lang]
        if self._wordfreq is None:
            import wordfreq

            self._wordfreq = wordfreq
            self._available = frozenset(wordfreq.available_languages(wordlist="best"))
        entry = None
        if lang in self._available and lang not in _UNSEGMENTED:
            wf = self._wordfreq
            entry = (
                wf.get_frequency_dict(lang, wordlist="best"),
                frozenset(wf.top_n_list(lang, self._top_n, wordlist="best")),
            )
        self._tables[lang] = entry
        return entry

    def common(self, lang: str | None, rare_zipf: float) -> frozenset | None:
        """The words of `lang`'s table at or over `rare_zipf` (by `zipf`, the very comparison
        `rare_words` makes), built once per (language, threshold); None without a table."""
        key = (_LANG_ALIASES.get(lang, lang), rare_zipf)
        if key not in self._common:
            entry = self.lookup(lang)
            if entry is None:
                self._common[key] = None
            else:  # wordfreq's frequencies take a few hundred distinct values: compare each once
                freqs = entry[0]
                is_common = {f: zipf(f) >= rare_zipf for f in set(freqs.values())}
                self._common[key] = frozenset(w for w, f in freqs.items() if is_common[f])
        return self._common[key]


def zipf(freq: float) -> float:
    """wordfreq's Zipf scale: log10 of the frequency per billion words; 0 for an unknown word."""
    return math.log10(freq) + 9.0 if freq > 0 else 0.0


def rare_words(tokens: Sequence[str], lang: str | None, tables: RarityTables,
               rare_zipf: float = 3.0, min_rare_len: int = 3) -> list[str]:
    """Sorted distinct words of a document that are alphabetic, at least `min_rare_len` letters,
    not stopwords and under `rare_zipf` (unknown words included); empty without a table. What the
    rare-coverage sample reads of each sampled document: the document's distinct words less the
    table's common ones (a set difference in C), then the few left are checked one by one."""
    common = tables.common(lang, rare_zipf)
    if common is None:
        return []
    freqs, stop = tables.lookup(lang)
    unknown_rare = rare_zipf > 0.0  # a word the table lacks has Zipf 0
    return sorted(w for w in set(tokens).difference(common)
                  if len(w) >= min_rare_len and w not in stop and w.isalpha() and (unknown_rare or w in freqs))


def doc_rarity(tokens: Sequence[str], lang: str | None, tables: RarityTables,
               rare_zipf: float = 3.0, min_rare_len: int = 3) -> dict:
    """Rarity of one document's tokens (from `signals.tokenize`).

    - mean_zipf: mean Zipf frequency over content-word tokens (alphabetic, not among the
      language's top-N stopwords); a word wordfreq does not know counts as Zipf 0, its own
      convention. None without content words or without a table for `lang`.
    - rare_words: `rare_words` (sorted distinct rare words). Empty without a table.
    """
    entry = tables.lookup(lang)
    if entry is None:
        return {"mean_zipf": None, "rare_words": []}
    freqs, stop = entry
    total = 0
    zsum = 0.0
    for word, n in Counter(tokens).items():  # C-counted
        if word in stop or not word.isalpha():
            continue
        total += n
        zsum += n * zipf(freqs.get(word, 0.0))
    return {"mean_zipf": round(zsum / total, 6) if total else None,
            "rare_words": rare_words(tokens, lang, tables, rare_zipf, min_rare_len)}


# --- weights -------------------------------------------------------------------------------


def density_bin(density: float) -> int:
    """Histogram bin of a rare_word_density (1 / DENSITY_BINS wide; densities are in [0, 1])."""
    return int(math.floor(min(1.0, max(0.0, density)) * DENSITY_BINS))


def count_density(hist: dict[int, int], record: Mapping) -> dict[int, int]:
    """Counts one record into a {density_bin: count} histogram for `rarity_ramp` when it is in a
    human stratum and has a rare_word_density (the documents the ramp will weigh); returns hist."""
    d = record.get("rare_word_density")
    if record.get("stratum") in HUMAN_STRATA and d is not None and math.isfinite(d):
        b = density_bin(d)
        hist[b] = hist.get(b, 0) + 1
    return hist


def _histogram_quantile(hist: Mapping[int, int], q: float) -> float:
    """Lower edge of the bin holding the q-quantile of the counted values (hist not empty)."""
    rank = q * (sum(hist.values()) - 1)
    seen = 0
    for b in sorted(hist):
        seen += hist[b]
        if seen > rank:
            return round(b / DENSITY_BINS, 6)
    return round(max(hist) / DENSITY_BINS, 6)


def rarity_ramp(cfg: WeightsConfig, density_hist: Mapping[int, int]) -> dict:
    """The run's rarity ramp, from a {density_bin: count} histogram of its human documents.

    Where the ramp sits matters more than its shape. At a fixed token budget a document's
    marginal worth is the new rare words it brings per token; with weights bounded in [1, cap]
    the best allocation is a step: the densest documents at the cap, the rest at 1 (a
    fractional knapsack when each rare word is held by one document). Which documents are "the
    densest" is relative to the corpus, and corpora differ: `rare_word_density` of the embedded
    sample's 220 human documents has median 2.4% (10th/90th percentiles 0.6% / 5.6%), of its
    WritingPrompts stories alone 1.8%, of its Wikipedia paragraphs 3.3%, of bench/
    tail_coverage.py's generated corpus 3.2% (0.8% / 10%). A fixed ramp set on one leaves
    another nearly flat: at a 10% budget the fixed ramp below (set on the whole sample) covers
    1.25x / 1.31x the rare words of uniform sampling on the stories / the BBC news alone, the
    previous ramp on rare_word_fraction 1.20x / 1.27x, a ramp on each one's own 70th -> 80th
    percentiles 1.39x / 1.34x (the oracle step: 1.39x / 1.34x). So by default the ramp runs
    from the 70th to the 80th percentile of the run's own human documents: about the densest
    fifth reaches the cap. Percentile pairs tried (expected coverage, bench/tail_coverage.py, budgets 2% and
    10%): at cap 4, 70/80 was the best pair or within 0.003 of it on the sample corpus, on each
    of its four sources alone and on the generated corpus, and within 0.007 of the oracle step
    (the bench's --ceiling); at caps 2 and 6 within 0.015 (a larger cap favours a slightly
    rarer band, e.g. 75/85). The measure: distinct rare words per token beat the share of
    distinct words (rare_word_fraction) and counts of rarer words only (Zipf < 2, < 1.5, unknown
    to wordfreq), each with its best percentiles, cap 4, 10% budget: sample 1.439 vs 1.434 /
    1.371 / 1.278 / 1.220, generated 1.458 vs 1.450 / 1.399 / 1.372 (it has no unknown words).

    Counted in integer bins (0.0001 wide), so the ramp is identical for any merge order.
    Returns a JSON-able dict: rare_density_start, rare_density_full, source ("calibrated",
    "config" for ramp "fixed", "fallback_too_few_documents"), calibration_documents, quantiles.
    """
    n = sum(density_hist.values())
    info = {"rare_density_start": cfg.rare_density_start, "rare_density_full": cfg.rare_density_full,
            "source": "config", "calibration_documents": n,
            "quantiles": [cfg.ramp_start_quantile, cfg.ramp_full_quantile]}
    if cfg.ramp == "fixed":
        return info
    if n < cfg.min_calibration_documents:
        info["source"] = "fallback_too_few_documents"
        return info
    start = _histogram_quantile(density_hist, cfg.ramp_start_quantile)
    full = _histogram_quantile(density_hist, cfg.ramp_full_quantile)
    if full <= start:  # both quantiles in one bin (e.g. most documents without rare words): a step
        full = round(start + 1 / DENSITY_BINS, 6)
    info.update(rare_density_start=start, rare_density_full=full, source="calibrated")
    return info


def rarity_weight(rare_word_density: float | None, cfg: WeightsConfig, ramp: Mapping | None = None) -> float:
    """The rarity ramp: 1 up to the ramp's start, rising linearly to `cap` at its full point,
    `cap` beyond. Monotone non-decreasing; 1 when the density is unknown.

    `ramp` is `rarity_ramp`'s output for the run (the pipeline passes it as a side input);
    None means the fixed ramp of the config (`rare_density_start` -> `rare_density_full`,
    0.035 -> 0.045: the 70th/80th percentiles of the embedded sample's 220 human documents).
    The density comes from wordfreq's tables (signals.py); a language with a small table counts
    more words as rare, which the run's percentiles absorb and a fixed ramp does not.
    """
    if rare_word_density is None or not math.isfinite(rare_word_density):
        return 1.0
    if ramp is None:
        lo, hi = cfg.rare_density_start, cfg.rare_density_full
    else:
        lo, hi = ramp["rare_density_start"], ramp["rare_density_full"]
    t = min(1.0, max(0.0, (rare_word_density - lo) / (hi - lo)))
    return 1.0 + (cfg.cap - 1.0) * t


def human_weight(record: dict, cfg: WeightsConfig, ramp: Mapping | None = None) -> float:
    """Sample weight of one document of a human stratum; 0 for every other stratum.

    min(cap, rarity_weight(rare_word_density, ramp) * multiplier(source)). Synthetic strata get
    0 here (they do not add to the human weighted tokens H); their weight is `synthetic_weight`.
    """
    stratum = record.get("stratum")
    if stratum in HUMAN_STRATA:
        w = rarity_weight(record.get("rare_word_density"), cfg, ramp) * cfg.multiplier(record.get("source"))
        return min(cfg.cap, w)
    if stratum in SYNTHETIC_STRATA or stratum in ZERO_WEIGHT_STRATA:
        return 0.0
    raise ValueError(f"unknown stratum {stratum!r}")


def synthetic_weight(human_weighted_tokens: float, synthetic_tokens: float, ceiling: float) -> float:
    """The one weight w <= 1 for every synthetic document so that w*S / (H + w*S) <= ceiling.

    w = min(1, c*H / ((1 - c)*S)) with c = ceiling * (1 - SHARE_MARGIN), checked against the
    share and nudged down by one float step at a time if rounding put it a hair over. The
    relative margin (1e-7) absorbs mixture.py's rounding of each document's weighted tokens to
    1e-6 tokens, so the share mixture.json reports is at or under the ceiling itself. Edge cases: S = 0 gives 1 (there
    is nothing to weigh, the share is 0); H = 0 with S > 0 gives 0 unless ceiling >= 1 (any
    positive w would make the share 1); ceiling <= 0 gives 0.
    """
    h, s = float(human_weighted_tokens), float(synthetic_tokens)
    if h < 0 or s < 0 or not (math.isfinite(h) and math.isfinite(s)):
        raise ValueError(f"token totals must be finite and >= 0, got H={h!r} S={s!r}")
    if s == 0:
        return 1.0
    if ceiling >= 1.0:
        return 1.0
    if ceiling <= 0.0 or h == 0:
        return 0.0
    target = ceiling * (1.0 - SHARE_MARGIN)
    w = min(1.0, target * h / ((1.0 - target) * s))
    while w > 0.0 and w * s / (h + w * s) > target:
        w = math.nextafter(w, 0.0)
    return w


def sample_weight(record: dict, cfg: WeightsConfig, synthetic_w: float, ramp: Mapping | None = None) -> float:
    """The final `sample_weight` column: human_weight for human strata (with the run's `ramp`),
    `synthetic_w` (from `synthetic_weight`, a side input) for synthetic strata, 0 for anchor
    and review."""
    if record.get("stratum") in SYNTHETIC_STRATA:
        return synthetic_w
    return human_weight(record, cfg, ramp)


class DensityHistogram(beam.CombineFn):
    """{density_bin: count} of rare_word_density over the human strata's documents, the input of
    `weights.rarity_ramp`. Input: the routed (chunk_key, ("record", record)) elements; integer
    counts, so the ramp is the same for any merge order."""

    def create_accumulator(self):
        return {}

    def add_input(self, acc, element):
        return count_density(acc, element[1][1])

    def merge_accumulators(self, accs):
        return merge_histograms(accs)

    def extract_output(self, acc):
        return acc
