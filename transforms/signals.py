"""Cheap per-document signals: one tokenisation, every statistic from it.

All functions are pure. `compute_signals` reads a bounded prefix (config
`signals.max_chars`) so a 30 MB document or a 500k-character token costs bounded time;
`n_chars` and `n_words` always describe the whole document.

Signals and where they come from:
- ttr: type-token ratio averaged over fixed, non-overlapping token windows (the mean
  segmental TTR of Johnson 1944 / McCarthy & Jarvis 2010), so it does not just measure length.
- token_entropy_bits: unigram entropy of the same windows, Miller-Madow corrected (see
  `window_entropy_bits`); also the unit of the shard entropy audit.
- burstiness: coefficient of variation of sentence lengths in words; human prose varies
  sentence length more than sampled model text (the "burstiness" of GPTZero-style detectors).
- repetition: fraction of word n-grams that repeat an earlier one (Gopher's duplicate
  n-gram heuristics, Rae et al. 2021, on words rather than characters).
- rare_word_fraction: share of alphabetic words under a Zipf frequency threshold in wordfreq's
  tables (Speer 2022) for the document's language; null where wordfreq has no table.
- rare_word_density: the same distinct rare words per token: what a document adds to the rare
  vocabulary of a sample per token it costs (the tail-oversampling weight reads this one).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass
from typing import Sequence

from collapseguard.core.settings import Range, setting
from collapseguard.core import text as core_text
from collapseguard.core.text import lower_tokens, ngrams, tokenize
from collapseguard.models.langid import FrequencyTables, LanguageId
from collapseguard.transforms.base import BatchedDoFn


@dataclass(frozen=True)
class SignalsConfig:
    # fixed token window for TTR and entropy (the entropy audit's unit, entropy.py)
    window_tokens: int = setting(100, within=Range(10, 10_000))
    # signals are computed on this prefix of huge documents
    max_chars: int = setting(200_000, within=Range(1000, 100_000_000))
    # language id reads this prefix (fastText lid is reliable well below 500)
    lid_chars: int = setting(500, within=Range(1, 1_000_000))
    # a word under this Zipf frequency counts as rare (wordfreq's scale runs from 0 to about 8)
    rare_zipf: float = setting(3.0, within=Range(0.0, 8.0))
    repetition_ngram: int = setting(3, within=Range(1, 100))

_SENTENCE_END = re.compile(r"[.!?。！？]+(?:\s+|$)")
_SPACE = re.compile(r"\s")
_LN2 = math.log(2.0)
_SPLIT_CHUNK = 1 << 20
_CLOGC = [0.0] + [c * math.log(c) for c in range(1, 4097)]  # c*ln(c) for window counts


def count_words(text: str, start: int = 0) -> int:
    """Word tokens (as `tokenize` counts them) in text[start:], in bounded memory: 1 MB chunks
    cut at whitespace, so a 30 MB document never becomes one 5-million-item list."""
    n, pos = 0, start
    while pos < len(text):
        end = min(pos + _SPLIT_CHUNK, len(text))
        while end < len(text) and not text[end].isspace():
            end += 1  # never cut a word in two
        n += len(tokenize(text[pos:end]))
        pos = end
    return n


def windows(tokens: Sequence[str], size: int) -> list[Sequence[str]]:
    """Non-overlapping full windows of `size` tokens; a shorter tail is dropped."""
    return [tokens[i : i + size] for i in range(0, len(tokens) - size + 1, size)]


def window_entropy_bits(window: Sequence[str]) -> float:
    """Unigram entropy of one token window, in bits, Miller-Madow bias-corrected.

    Estimator: plug-in entropy H = -sum p log2 p plus the Miller-Madow correction
    (K - 1) / (2 N ln 2), K distinct tokens, N tokens (Miller 1955; Paninski 2003). The
    plug-in estimate grows with sample size (more types appear), so comparing texts or shards
    of different sizes on it measures size, not diversity. Fixing N (the window) makes every
    value comparable, and the correction removes most of the remaining downward bias at that N.
    """
    return _entropy_from_counts(Counter(window).values(), len(window))


def _entropy_from_counts(counts, n: int) -> float:
    clogc = _CLOGC if n < len(_CLOGC) else [c * math.log(c) if c else 0.0 for c in range(n + 1)]
    h = math.log(n) - sum(map(clogc.__getitem__, counts)) / n
    return (h + (len(counts) - 1) / (2.0 * n)) / _LN2


def burstiness(text: str) -> float | None:
    """Coefficient of variation of sentence lengths (words per sentence); None under 2 sentences."""
    kernel = core_text.kernel
    return _variation(kernel.sentence_lengths(text) if kernel is not None else sentence_lengths(text))


def sentence_lengths(text: str) -> list[int]:
    """Words per sentence: whitespace normalised, a sentence ends at a run of . ! ? (and CJK
    stops) followed by whitespace or the end; words are the spaces in its span plus one."""
    text = " ".join(text.split()) if "\n" in text or "\t" in text or "  " in text else text.strip()
    cuts = [m.end() for m in _SENTENCE_END.finditer(text)]
    if not cuts or cuts[-1] < len(text):
        cuts.append(len(text))
    # words per sentence = spaces in its span + 1 (whitespace normalised above): no substrings
    lengths, start, count = [], 0, text.count
    for end in cuts:
        if end > start:
            lengths.append(count(" ", start, end) + (0 if text[end - 1] == " " else 1))
        start = end
    return lengths


def _variation(lengths: list[int]) -> float | None:
    if len(lengths) < 2:
        return None
    mean = sum(lengths) / len(lengths)
    var = sum((x - mean) ** 2 for x in lengths) / len(lengths)
    return math.sqrt(var) / mean


def repetition(tokens: Sequence[str], n: int) -> float | None:
    return _repetition(_distinct_ngrams(tokens, n), len(tokens), n)


def _distinct_ngrams(tokens: Sequence[str], n: int) -> int | None:
    """Distinct word n-grams; None under one n-gram."""
    return len(set(ngrams(tokens, n))) if len(tokens) >= n else None


def _repetition(n_distinct: int | None, n_tokens: int, n: int) -> float | None:
    """Share of the n-grams that repeat an earlier one, from the distinct count."""
    return 1.0 - n_distinct / (n_tokens - n + 1) if n_distinct is not None else None


def rare_word_counts(tokens: Sequence[str], common: frozenset | None) -> tuple[int, int] | None:
    """(distinct rare words, distinct words) of a document; None without a table (`common`).

    Rare: alphabetic and not in `common` (the table's words at or over the rarity threshold).
    Distinct words: alphabetic words plus words the table knows. Set operations keep it cheap
    (set.difference iterates the document's few hundred types, never the table).
    """
    if common is None:
        return None
    types = set(tokens)
    uncommon = types.difference(common)
    rare = sum(1 for w in uncommon if w.isalpha())
    return rare, len(types) - len(uncommon) + rare


def rare_word_fraction(tokens: Sequence[str], common: frozenset | None) -> float | None:
    """Share of the document's distinct words that are rare (see `rare_word_counts`).

    Counted over distinct words (types), so a rare word repeated ten times counts once: the
    figure measures the breadth of rare vocabulary. None without a table or without words.
    """
    return _fraction(rare_word_counts(tokens, common))


def rare_word_density(tokens: Sequence[str], common: frozenset | None) -> float | None:
    """Distinct rare words per token: rare types / len(tokens) (see `rare_word_counts`).

    What a document adds to a sample's rare vocabulary for each token of budget it costs: at a
    fixed token budget, the documents that cover the most new rare words are the ones dense in
    them, and a long document whose rare share of types is high can still be thin per token
    (types grow slower than tokens). None without a table or without tokens.
    """
    return _density(rare_word_counts(tokens, common), len(tokens))


def _fraction(counts: tuple[int, int] | None) -> float | None:
    return counts[0] / counts[1] if counts and counts[1] else None


def _density(counts: tuple[int, int] | None, n_tokens: int) -> float | None:
    return counts[0] / n_tokens if counts is not None and n_tokens else None


def zipf_to_freq(zipf: float) -> float:
    """wordfreq's Zipf scale: zipf = log10(frequency per billion words)."""
    return 10.0 ** (zipf - 9.0)


def compute_signals(
    text: str,
    *,
    window_tokens: int,
    max_chars: int,
    repetition_ngram: int,
    common_words: frozenset | None,
) -> dict:
    """All cheap signals of one document, plus internal `_windows` and `_tail` for the audit."""
    head, rest = text, len(text)
    if len(text) > max_chars:  # a prefix; the rest is only counted, from its next whitespace on
        head = text[:max_chars]
        rest = max_chars
        if not text[max_chars - 1].isspace():  # the cut split a word: it counts once, in head
            m = _SPACE.search(text, max_chars)
            rest = m.start() if m else len(text)
    low, kernel = head.lower(), core_text.kernel
    if kernel is not None:  # the compiled kernel: the same integers as word_counts, in C
        counts = kernel.word_stats(low, window_tokens, repetition_ngram, common_words)
    else:
        counts = word_counts(lower_tokens(low), window_tokens, repetition_ngram, common_words)
    n_tokens, window_counts, n_types, n_grams, n_rare, n_distinct, tail = counts
    if window_counts:
        ents = [_entropy_from_counts(c, window_tokens) for c in window_counts]
        ttr = sum(map(len, window_counts)) / (len(window_counts) * window_tokens)
        ent = math.fsum(ents) / len(ents)
    else:  # shorter than one window: TTR over what there is, no entropy figure
        ents = []
        ttr = n_types / n_tokens if n_tokens else None
        ent = None
    rare = None if n_rare is None else (n_rare, n_distinct)
    return {
        "n_chars": len(text),
        "n_words": n_tokens + count_words(text, rest),
        "ttr": ttr,
        "burstiness": burstiness(head),
        "token_entropy_bits": ent,
        "repetition": _repetition(n_grams, n_tokens, repetition_ngram),
        "rare_word_fraction": _fraction(rare),
        "rare_word_density": _density(rare, n_tokens),
        "_windows": ents,
        # tokens after the last full window (all tokens of a short document), space-joined: the
        # shard audit packs these, in line order, into more windows so short documents count
        "_tail": tail,
    }


def word_counts(tokens: Sequence[str], window_tokens: int, n: int, common: frozenset | None) -> tuple:
    """The integers every signal is computed from (the compiled kernel's `word_stats` returns
    the same, in C): (tokens, per full window the counts of its distinct tokens in order
    of first appearance, distinct tokens, distinct n-grams or None under one n-gram, rare words
    and distinct words as `rare_word_counts` or None without a table, the tokens after the last
    full window space-joined)."""
    wins = windows(tokens, window_tokens)
    counted = [Counter(w).values() for w in wins]
    rare = rare_word_counts(tokens, common)
    n_grams = _distinct_ngrams(tokens, n)
    n_types = len(set(tokens)) if not wins else None  # only a short document's TTR reads it
    return (len(tokens), counted, n_types, n_grams, *(rare or (None, None)),
            " ".join(tokens[len(wins) * window_tokens :]))


class CheapSignals:
    """Worker-side scorer: language id batched per call, signals per document.

    Built in DoFn.setup (loads lid.176 and opens wordfreq), so nothing heavy is pickled.
    """

    def __init__(self, cfg):
        self._cfg = cfg
        self._lid = LanguageId(max_chars=cfg.lid_chars)
        self._freqs = FrequencyTables()

    def score(self, records: list[dict]) -> list[dict]:
        """Adds signal fields to each record in place and returns the list."""
        cfg = self._cfg
        for rec, (lang, score) in zip(records, self._lid.predict([r["text"] for r in records])):
            rec["lang"], rec["lang_score"] = lang, score
            rec.update(
                compute_signals(
                    rec["text"],
                    window_tokens=cfg.window_tokens,
                    max_chars=cfg.max_chars,
                    repetition_ngram=cfg.repetition_ngram,
                    common_words=self._freqs.common(lang, zipf_to_freq(cfg.rare_zipf)),
                )
            )
        return records


class CheapSignalsFn(BatchedDoFn):
    """Scores records in batches (one fastText call per batch)."""

    def __init__(self, cfg, batch_size: int = 256):
        super().__init__(batch_size)
        self._cfg = cfg
        self._scorer = None

    def setup(self):
        self._scorer = CheapSignals(self._cfg)

    def score_batch(self, records: list[dict]) -> list[dict]:
        return self._scorer.score(records)
