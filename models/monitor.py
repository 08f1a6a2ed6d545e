"""The tail monitor: how a causal LM does on the rare tail of human language, and how diverse
its own writing is. What the model-collapse literature watches from one model generation to the
next (Shumailov et al., Nature 2024: the tails go first; Guo et al. 2024: output diversity
falls; Gerstgrasser et al. 2024: faster when synthetic data replaces human data), measured on
the stage's anchor split, the human text that never enters training.

Two parts, one JSON object:

- **Perplexity per word-frequency band.** Each anchor document (its first `max_doc_words`
  words) is scored token by token; a word's log-prob is the sum of its tokens' (so models with
  different tokenizers compare), and words fall into bands by wordfreq's Zipf frequency in the
  document's language: head (Zipf >= 5: "the", "house"), torso (3 <= Zipf < 5), tail (Zipf < 3,
  unknown words included: the stage's own "rare word" threshold, `signals.rare_zipf`). Per band:
  per-word perplexity exp(-mean log-prob), and **tail recall at k**: the share of the band's
  words whose first token was among the model's k most likely next tokens. A collapsing model
  keeps its head perplexity and loses the tail: tail perplexity rises, tail recall falls.
- **Diversity of generations.** From the openings (`prompt_words` words) of up to `prompts`
  anchor documents the model writes `continuation_words` words, sampled at temperature 1 from
  its full distribution (seeded); the same measures are taken on the human continuations of the
  same openings: distinct-1/2/3 (Li et al. 2016), mean segmental TTR over 25-word segments,
  4-gram self-similarity (the report's Self-BLEU equivalent, core/text.py), vocabulary size and
  the share of tail words.

`run_monitor` takes any object with the `MonitorLM` methods: the loaded causal LM
(`causal_lm.GenerativeLM`, the scorer's own loading code), the collapse lab's n-gram models,
or a test's hand-made model. Documents are taken in sha256(id) order, so the result does not
depend on the order files were read. This module knows no graph and no CLI.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from typing import Mapping, Protocol, Sequence

from collapseguard.core.hashing import salted_int
from collapseguard.core.text import _WORD, distinct_n, self_similarity, ttr_windows

MONITOR_VERSION = 1
BANDS = ("head", "torso", "tail")
HEAD_ZIPF = 5.0
TAIL_ZIPF = 3.0
SEGMENT_WORDS = 25  # MSTTR segment: short enough for a 48-word continuation to hold one
ORDER_SALT = "collapseguard/monitor-order/v1"


class MonitorLM(Protocol):
    def describe(self) -> dict: ...

    def score(self, text: str, k: int) -> list[tuple[int, int, float | None, bool | None]]:
        """The text's tokens in order: (start, end) character offsets, natural-log probability
        given everything before it (None without context, e.g. the first token), and whether
        it was among the model's k most likely predictions there (None where log-prob is)."""
        ...

    def generate(self, prompts: list[str], max_new_tokens: int, seed: int) -> list[str]:
        """One continuation per prompt, the new text only, sampled at temperature 1."""
        ...


# --------------------------------------------------------------------------- words and bands


def word_spans(text: str) -> list[tuple[int, int, str]]:
    """(start, end, lower-cased word) of each word of `text`, words as the stage defines them
    (core/text.py), found on the original text so offsets match the model tokenizer's."""
    return [(m.start(), m.end(), m.group().lower()) for m in _WORD.finditer(text)]


def cut_words(text: str, n: int) -> str:
    """`text` up to the end of its n-th word (all of it if it has fewer)."""
    spans = word_spans(text)
    return text if len(spans) <= n else text[: spans[n - 1][1]]


class ZipfBands:
    """Band of a word in a language by wordfreq's Zipf scale; None where wordfreq has no table.
    Tables load on first use, once per language."""

    def __init__(self, head_zipf: float = HEAD_ZIPF, tail_zipf: float = TAIL_ZIPF):
        if not tail_zipf < head_zipf:
            raise ValueError("need tail_zipf < head_zipf")
        self.head_zipf, self.tail_zipf = head_zipf, tail_zipf
        self._tables: dict[str, dict | None] = {}

    def _table(self, lang: str | None) -> dict | None:
        lang = (lang or "").split("-")[0].lower()
        if lang not in self._tables:
            import wordfreq  # a data package: only a run that scores words needs it

            ok = lang in wordfreq.available_languages(wordlist="best")
            self._tables[lang] = wordfreq.get_frequency_dict(lang, wordlist="best") if ok else None
        return self._tables[lang]

    def band(self, word: str, lang: str | None) -> str | None:
        table = self._table(lang)
        if table is None:
            return None
        f = table.get(word, 0.0)
        z = math.log10(f) + 9.0 if f > 0 else 0.0
        return "head" if z >= self.head_zipf else "torso" if z >= self.tail_zipf else "tail"


def words_from_tokens(tokens: Sequence[tuple[int, int, float | None, bool | None]],
                      spans: Sequence[tuple[int, int, str]]) -> list[tuple[str, float | None, bool | None]]:
    """Per word: (word, log-prob = the sum over its tokens, whether its first token was in the
    top k). A token belongs to the word holding its last non-space character; a word with a
    token the model had no context for gets None. Words no token ends in are left out."""
    starts = [s for s, _, _ in spans]
    acc: dict[int, list] = {}
    for start, end, lp, hit in tokens:
        if end <= start:
            continue
        i = bisect_right(starts, end - 1) - 1
        if i < 0 or not spans[i][0] <= end - 1 < spans[i][1]:
            continue  # punctuation or space
        if i not in acc:
            acc[i] = [0.0, hit]
        a = acc[i]
        a[0] = None if (a[0] is None or lp is None) else a[0] + lp
    return [(spans[i][2], acc[i][0], acc[i][1] if acc[i][0] is not None else None) for i in sorted(acc)]


class BandTotals:
    """Running sums per (language, band): words, their log-probs, top-k hits."""

    def __init__(self):
        self.t: dict[tuple[str, str], list] = {}

    def add(self, lang: str, band: str, logprob: float, hit: bool | None) -> None:
        row = self.t.setdefault((lang, band), [0, 0.0, 0])
        row[0] += 1
        row[1] += logprob
        row[2] += bool(hit)

    def table(self, langs: Sequence[str] | None = None) -> dict:
        out = {}
        for band in BANDS:
            n = lp = hits = 0
            for (lang, b), (bn, blp, bh) in self.t.items():
                if b == band and (langs is None or lang in langs):
                    n, lp, hits = n + bn, lp + blp, hits + bh
            out[band] = {"words": n, "perplexity": _round(math.exp(-lp / n)) if n else None,
                         "mean_logprob": _round(lp / n) if n else None,
                         "recall_at_k": _round(hits / n) if n else None}
        return out


# --------------------------------------------------------------------------- diversity


def generation_diversity(docs: Sequence[Sequence[str]], bands: ZipfBands | None = None,
                         lang: str = "en") -> dict:
    """Diversity of a set of texts (each a list of words): distinct-1/2/3 over all of them
    (n-grams never cross texts), mean segmental TTR over full 25-word segments, 4-gram
    self-similarity between texts, vocabulary (distinct words), words, and the share of words
    in the tail band (None without `bands` or a table for `lang`)."""
    words = sum(len(d) for d in docs)
    tail_share = None
    if bands is not None and words:
        labels = [bands.band(w, lang) for d in docs for w in d]
        if all(x is not None for x in labels):
            tail_share = _round(sum(1 for x in labels if x == "tail") / words)
    return {
        "texts": len(docs),
        "words": words,
        "distinct_1": _round(distinct_n(docs, 1)),
        "distinct_2": _round(distinct_n(docs, 2)),
        "distinct_3": _round(distinct_n(docs, 3)),
        "msttr": _round(ttr_windows(docs, SEGMENT_WORDS)),
        "self_similarity": _round(self_similarity(docs, 4)),
        "vocabulary": len({w for d in docs for w in d}),
        "tail_word_share": tail_share,
    }


# --------------------------------------------------------------------------- the monitor


def ordered(docs: Sequence[Mapping]) -> list[Mapping]:
    """Documents in sha256(salt, id) order (ties by text): independent of the read order."""
    return sorted(docs, key=lambda d: (salted_int(ORDER_SALT, str(d.get("id"))), str(d.get("text"))))


def run_monitor(lm: MonitorLM, docs: Sequence[Mapping], *, prompts: int = 32, prompt_words: int = 24,
                continuation_words: int = 48, k: int = 10, seed: int = 0, max_doc_words: int = 400,
                bands: ZipfBands | None = None) -> dict:
    """The monitor's JSON object for `lm` on anchor documents (dicts with id, text, lang)."""
    if prompts < 0 or prompt_words < 1 or continuation_words < 1 or k < 1 or max_doc_words < 2:
        raise ValueError("need prompts >= 0, prompt_words >= 1, continuation_words >= 1, k >= 1, max_doc_words >= 2")
    bands = bands or ZipfBands()
    docs = [d for d in ordered(docs) if isinstance(d.get("text"), str) and d["text"].strip()]
    totals = BandTotals()
    langs: dict[str, int] = {}
    skipped = {"no_table": 0, "no_context": 0}
    for d in docs:
        lang = (d.get("lang") or "en")
        text = cut_words(d["text"], max_doc_words)
        for word, lp, hit in words_from_tokens(lm.score(text, k), word_spans(text)):
            band = bands.band(word, lang)
            if band is None:
                skipped["no_table"] += 1
                continue
            if lp is None:
                skipped["no_context"] += 1
                continue
            totals.add(lang, band, lp, hit)
            langs[lang] = langs.get(lang, 0) + 1
    ppl = {"all": totals.table()}
    ppl["per_language"] = {lang: totals.table([lang]) for lang in sorted(langs)}

    # generations from anchor openings, against the human continuations of the same openings
    chosen = []
    for d in docs:
        spans = word_spans(d["text"])
        if len(spans) >= prompt_words + continuation_words:
            chosen.append((d, spans))
        if len(chosen) >= prompts:
            break
    prompt_texts = [d["text"][: spans[prompt_words - 1][1]] for d, spans in chosen]
    human = [[w for _, _, w in spans[prompt_words: prompt_words + continuation_words]] for _, spans in chosen]
    new = lm.generate(prompt_texts, max_new_tokens=math.ceil(continuation_words * 1.5) + 8, seed=seed) if chosen else []
    model = [[w for _, _, w in word_spans(t)][:continuation_words] for t in new]
    gen_lang = _majority([d.get("lang") or "en" for d, _ in chosen]) or "en"
    m, h = generation_diversity(model, bands, gen_lang), generation_diversity(human, bands, gen_lang)
    return {
        "monitor_version": MONITOR_VERSION,
        "model": lm.describe(),
        "anchor": {"documents": len(docs), "words_scored": sum(v["words"] for v in ppl["all"].values()),
                   "words_skipped": skipped, "languages": dict(sorted(langs.items()))},
        "settings": {"k": k, "prompts": prompts, "prompt_words": prompt_words,
                     "continuation_words": continuation_words, "max_doc_words": max_doc_words, "seed": seed,
                     "head_zipf": bands.head_zipf, "tail_zipf": bands.tail_zipf, "segment_words": SEGMENT_WORDS},
        "perplexity": ppl,
        "tail_recall_at_k": {band: ppl["all"][band]["recall_at_k"] for band in BANDS},
        "generation": {"prompts": len(chosen), "language": gen_lang, "model": m, "human": h,
                       "vocabulary_ratio": _round(m["vocabulary"] / h["vocabulary"]) if h["vocabulary"] else None,
                       "samples": [{"prompt": p, "model": t} for p, t in list(zip(prompt_texts, new))[:5]]},
    }


# metric path, label, +1 if a rise is worse, -1 if a fall is worse
TRACKED = (
    ("perplexity.all.tail.perplexity", "tail perplexity", +1),
    ("perplexity.all.torso.perplexity", "torso perplexity", +1),
    ("perplexity.all.head.perplexity", "head perplexity", +1),
    ("tail_recall_at_k.tail", "tail recall@k", -1),
    ("generation.model.distinct_1", "distinct-1", -1),
    ("generation.model.distinct_2", "distinct-2", -1),
    ("generation.model.distinct_3", "distinct-3", -1),
    ("generation.model.msttr", "MSTTR", -1),
    ("generation.model.self_similarity", "self-similarity", +1),
    ("generation.model.vocabulary", "vocabulary", -1),
    ("generation.model.tail_word_share", "tail-word share", -1),
)


def metric(result: Mapping, path: str):
    node = result
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node if isinstance(node, (int, float)) and not isinstance(node, bool) else None


def compare(current: Mapping, baseline: Mapping) -> list[dict]:
    """The tracked metrics, before (baseline) and after (current): change, relative change,
    and whether it moved the way collapse moves them. A metric missing on either side is
    listed with None."""
    rows = []
    for path, label, worse_sign in TRACKED:
        before, after = metric(baseline, path), metric(current, path)
        change = rel = worse = None
        if before is not None and after is not None:
            change = _round(after - before)
            rel = _round((after - before) / abs(before)) if before else None
            worse = (after - before) * worse_sign > 0
        rows.append({"metric": path, "label": label, "before": before, "after": after, "change": change,
                     "relative": rel, "worse": worse})
    return rows


def settings_differ(current: Mapping, baseline: Mapping) -> list[str]:
    """Settings that differ between two results (distinct-n and vocabulary depend on the number
    of prompts and words, perplexities on the anchor): such a comparison is not like for like."""
    a, b = current.get("settings") or {}, baseline.get("settings") or {}
    out = [f"{k}: {b.get(k)} -> {a.get(k)}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
    da, db = (current.get("anchor") or {}).get("documents"), (baseline.get("anchor") or {}).get("documents")
    if da != db:
        out.append(f"anchor documents: {db} -> {da}")
    return out


def comparison_lines(rows: Sequence[Mapping]) -> list[str]:
    out = []
    for r in rows:
        if r["change"] is None:
            out.append(f"  {r['label']:<18} {_show(r['before'])} -> {_show(r['after'])}")
            continue
        rel = "" if r["relative"] is None else f" ({r['relative']:+.1%})"
        verdict = "worse" if r["worse"] else "better" if r["change"] else "same"
        out.append(f"  {r['label']:<18} {_show(r['before'])} -> {_show(r['after'])}{rel}  {verdict}")
    return out


def _show(v) -> str:
    return "–" if v is None else f"{v:,.4g}"


def _majority(values: Sequence[str]) -> str | None:
    counts: dict[str, int] = {}
    for v in values:
        counts[v] = counts.get(v, 0) + 1
    return min(counts, key=lambda v: (-counts[v], v)) if counts else None


def _round(x, digits: int = 6):
    return None if x is None else round(float(x), digits)
