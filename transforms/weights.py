"""Sample weights: oversample the human tail, cap the synthetic share. Pure functions.

Two ideas from the model-collapse literature, each a separate function:

- Tail oversampling (human strata). Recursive training forgets the low-frequency tail of the
  distribution first (Shumailov et al., "AI models collapse when trained on recursively
  generated data", Nature 2024). A human document rich in rare words is the part of the corpus
  a collapsing model loses, so it gets a larger sample weight: `human_weight` rises with the
  document's `rare_word_fraction`, from 1 (no rare words) to `cap` (default 4), times an
  optional per-source multiplier, the product capped again. Capped, so no single odd document
  (OCR noise, a word list) dominates the mix.
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
from dataclasses import dataclass
from typing import Mapping, Sequence

HUMAN_STRATA = ("human_verified", "human_unverified")
SYNTHETIC_STRATA = ("synthetic_known", "synthetic_suspected")
ZERO_WEIGHT_STRATA = ("anchor", "review")
TRAINING_STRATA_ALL = HUMAN_STRATA + SYNTHETIC_STRATA

WEIGHT_VERSION = "rare_fraction_ramp_v1"  # recorded next to the column (dolma's habit)

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
    - rare_fraction_start / rare_fraction_full: the rarity ramp (see `rarity_weight`).
    - rare_zipf, stopwords_top_n, min_rare_len: what `doc_rarity` calls rare / a stopword.
    """

    cap: float = 4.0
    synthetic_ceiling: float = 0.001
    source_multipliers: tuple = ()
    rare_fraction_start: float = 0.05
    rare_fraction_full: float = 0.08
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
        if not 0.0 <= self.rare_fraction_start < self.rare_fraction_full <= 1.0:
            raise ValueError("weights: need 0 <= rare_fraction_start < rare_fraction_full <= 1")
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


def zipf(freq: float) -> float:
    """wordfreq's Zipf scale: log10 of the frequency per billion words; 0 for an unknown word."""
    return math.log10(freq) + 9.0 if freq > 0 else 0.0


def doc_rarity(tokens: Sequence[str], lang: str | None, tables: RarityTables,
               rare_zipf: float = 3.0, min_rare_len: int = 3) -> dict:
    """Rarity of one document's tokens (from `signals.tokenize`).

    - mean_zipf: mean Zipf frequency over content-word tokens (alphabetic, not among the
      language's top-N stopwords); a word wordfreq does not know counts as Zipf 0, its own
      convention. None without content words or without a table for `lang`.
    - rare_words: sorted distinct words that are alphabetic, at least `min_rare_len` letters and
      under `rare_zipf` (unknown words included). Empty without a table.
    """
    entry = tables.lookup(lang)
    if entry is None:
        return {"mean_zipf": None, "rare_words": []}
    freqs, stop = entry
    counts: dict[str, int] = {}
    for t in tokens:
        counts[t] = counts.get(t, 0) + 1
    total = 0
    zsum = 0.0
    rare = []
    for word, n in counts.items():
        if word in stop or not word.isalpha():
            continue
        z = zipf(freqs.get(word, 0.0))
        total += n
        zsum += n * z
        if z < rare_zipf and len(word) >= min_rare_len:
            rare.append(word)
    return {"mean_zipf": round(zsum / total, 6) if total else None, "rare_words": sorted(rare)}


# --- weights -------------------------------------------------------------------------------


def rarity_weight(rare_word_fraction: float | None, cfg: WeightsConfig) -> float:
    """The rarity ramp: 1 up to `rare_fraction_start`, rising linearly to `cap` at
    `rare_fraction_full`, `cap` beyond. Monotone non-decreasing; 1 when the fraction is unknown.

    `rare_word_fraction` is the share of a document's distinct words that are rare (signals.py).
    Default ramp 0.05 -> 0.08, set on real English human text (the 220 human documents of the
    embedded sample corpus: BBC news, Wikipedia, WritingPrompts stories), where the
    10th/50th/75th/90th percentiles are 0.9% / 3.7% / 6.1% / 8.4%: about the lower two thirds
    keep weight 1 and the rarest ~10% reach the cap. Of the ramps tried there (bench/
    tail_coverage.py --corpus sample), this one covered the most distinct rare words at a fixed
    token budget; ramps from 0 (any rare word up-weights a document) covered fewer, because
    they spend the cap's limited odds on ordinary documents. The thresholds suit wordfreq's
    large tables; languages with small tables count more words as rare and may want their own.
    """
    if rare_word_fraction is None or not math.isfinite(rare_word_fraction):
        return 1.0
    lo, hi = cfg.rare_fraction_start, cfg.rare_fraction_full
    ramp = min(1.0, max(0.0, (rare_word_fraction - lo) / (hi - lo)))
    return 1.0 + (cfg.cap - 1.0) * ramp


def human_weight(record: dict, cfg: WeightsConfig) -> float:
    """Sample weight of one document of a human stratum; 0 for every other stratum.

    min(cap, rarity_weight(rare_word_fraction) * multiplier(source)). Synthetic strata get 0
    here (they do not add to the human weighted tokens H); their weight is `synthetic_weight`.
    """
    stratum = record.get("stratum")
    if stratum in HUMAN_STRATA:
        w = rarity_weight(record.get("rare_word_fraction"), cfg) * cfg.multiplier(record.get("source"))
        return min(cfg.cap, w)
    if stratum in SYNTHETIC_STRATA or stratum in ZERO_WEIGHT_STRATA:
        return 0.0
    raise ValueError(f"unknown stratum {stratum!r}")


def synthetic_weight(human_weighted_tokens: float, synthetic_tokens: float, ceiling: float) -> float:
    """The one weight w <= 1 for every synthetic document so that w*S / (H + w*S) <= ceiling.

    w = min(1, ceiling*H / ((1 - ceiling)*S)), checked against the share and nudged down by
    one float step at a time if rounding put it a hair over. Edge cases: S = 0 gives 1 (there
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
    w = min(1.0, ceiling * h / ((1.0 - ceiling) * s))
    while w > 0.0 and w * s / (h + w * s) > ceiling:
        w = math.nextafter(w, 0.0)
    return w


def sample_weight(record: dict, cfg: WeightsConfig, synthetic_w: float) -> float:
    """The final `sample_weight` column: human_weight for human strata, `synthetic_w` (from
    `synthetic_weight`, a side input) for synthetic strata, 0 for anchor and review."""
    if record.get("stratum") in SYNTHETIC_STRATA:
        return synthetic_w
    return human_weight(record, cfg)
