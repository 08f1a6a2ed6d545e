"""The collapse lab: recursive training at CPU scale, raw webs against curated ones.

    .venv/bin/python bench/collapse_lab.py [--out collapse-lab-out] [--quick]
    make lab                     # installs matplotlib for the PNG, then the same

What it does. A small language model is trained from scratch on human text (generation 0).
Every later generation g trains on a "web": fresh human documents (a pool of its own, never
seen before) plus documents sampled from generation g-1's model, 80% of the web synthetic
(250 + 1,000 documents; generation 0: 1,250 human documents). Five arms, each with its own
chain of models, generations 0..5, 3 seeds:

- raw-replace: generation g trains on web_g alone (the previous training data is dropped).
- raw-accumulate: generation g trains on the generation-0 human set plus every web so far
  (the training set grows by one web per generation, as in Gerstgrasser et al. 2024).
- curated-attested: web_g is written as a JSONL shard, run through `collapseguard run
  --scoring-model none` (config: `lab-human` is a verified source), and the training set is
  drawn, seeded and with replacement, from the rows of the training strata (human_verified,
  human_unverified, synthetic_known, synthetic_suspected) with probability proportional to
  `sample_weight`, as many documents as the raw web holds. The stage's anchor, review and
  rejected outputs never enter training. Synthetic documents carry `generator: lab-gen-<m>`
  (m: the generation of the model that wrote them): the attested, verified path.
- curated-unattested: the same, but synthetic documents carry no generator and `source: web`
  with a timestamp after the cutoff, so only the detector (the no-LM detector that
  `--scoring-model none` leaves: the shipped fastText classifier and its calibration) can
  catch them.
- curated-accumulate: as curated-attested, but the draw is from a pool that accumulates:
  generation 0's human documents (weight 1) plus the training-strata rows of every curated
  web so far, drawn by `sample_weight` to raw-accumulate's training-set size (1,250 x (g+1)).

The web's synthetic documents are sampled from a document start (no prompt), top-k with k = 50
(what `transformers`' generate does by default when sampling), and kept, like the human ones,
from 30 words. Why top-k: with the model's full distribution at temperature 1 (`--web-top-k
0`), measured, raw-replace's tail perplexity still rose 6.3x over five generations but the
diversity of its generations did not fall beyond seed noise (distinct-1 -4.9%, distinct-2
-1.7%, distinct-3 -0.3%): a Kneser-Ney model refitted on its own full-distribution samples
also learns its smoothing noise (word pairs drawn through the backoff), which keeps its
writing as varied while it forgets rare words. A truncated sampler, as web text is written,
drops that low-probability mass, and the diversity collapse appears.

After each generation the project's monitor (`collapseguard.models.monitor.run_monitor`)
scores the model on one held-out human anchor (300 documents, the same for every arm,
generation and seed, never in any training set or web): per-word perplexity by wordfreq Zipf
band (head / torso / tail, tail = Zipf < 3, unknown words included), tail recall@10, and the
diversity of the model's continuations of anchor prompts, sampled from its full distribution
(distinct-1/2/3, MSTTR, self-similarity, vocabulary). Outputs: results.json (every figure,
the settings, timings apart), results.md (a table per metric: mean +- sd over seeds; the
change from generation 0, and from generation 1, to the last against seed noise; where the
curated webs' synthetic documents went), collapse.svg (hand-written, no dependencies) and
collapse.png (matplotlib; skipped with a message when it is not installed). Perplexity panels
use a log scale: the tail's perplexity, ~1e10, is dominated by unknown words spelled out.

The model, and why not a transformer. A 2-layer d=128 Llama-style transformer (1M
parameters) trained at only ~5,400 tokens/s on this 2-core machine and reached a loss of 6.45
(perplexity ~630) after 60 s: it would not learn language in minutes per generation. The lab
model is therefore a word-level interpolated Kneser-Ney trigram LM (`NgramLM`) with an open
vocabulary: an unknown word gets p(<unk> | context) times a character-unigram spelling
model, so every word of any text has a finite log-probability and forgetting a rare word
shows up as a rising tail perplexity. Fixed discount 0.75 at every order (Ney, Essen & Kneser
1994), so a duplicated document (the curated draws are with replacement) sharpens only the
top order's counts and leaves the continuation-count lower orders unchanged, where estimated
discounts would swing with the duplication. The unknown-word mass is the unigram level's
discounted mass, 0.75 x types / bigram types. Sampling never emits <unk>: a model writes only
words it has seen, which is how the tail is lost. Fitting takes about a second per 200k words;
sampling 1,000 documents ~1 s from the full distribution, ~13 s top-k.

Measured: README.md, "Does curation slow collapse? The collapse lab" (what each arm shows),
and bench/collapse-lab/results.md (every table of the committed run: 3 seeds, 5 arms, ~8
minutes here).

What it does not show. One corpus (about 3,500 human documents of the repo's training data:
news, Wikipedia, Reddit stories, arXiv abstracts, Usenet, speeches, fiction...), one model
family far smaller and simpler than an LLM, trigram samples that are word salad beyond three
words (so the detector's task in the unattested arm is different from, and here harder than,
on LLM text), 3 seeds. Seeds vary the data order (which human documents fall in generation 0
and in each fresh pool), the model's sampling and the curated draws; the anchor is fixed.
curated-attested and curated-unattested train each generation on that web's curated rows
alone (no curated data carried over), at raw-replace's document budget. It shows mechanisms
and directions, not magnitudes that carry over to LLMs.
"""

from __future__ import annotations

import argparse
import bisect
import dataclasses
import hashlib
import heapq
import itertools
import json
import math
import random
import shutil
import statistics
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, NoReturn, Sequence

REPO = Path(__file__).resolve().parents[1]
from collapseguard.core.text import _WORD, tokenize  # the stage's word
from collapseguard.models.monitor import metric as get  # a number at a dotted path of a result, or None

DATA = REPO / "models" / "training" / "data"
BOS, EOS, UNK = "<s>", "</s>", "<unk>"
ARMS = ("raw-replace", "raw-accumulate", "curated-attested", "curated-unattested", "curated-accumulate")
TRAINING_STRATA = ("human_verified", "human_unverified", "synthetic_known", "synthetic_suspected")
HUMAN_TS, SYNTHETIC_TS = "2021-06-01T00:00:00Z", "2025-06-01T00:00:00Z"
CURATE_CONFIG = """\
# The collapse lab's config: fresh human documents carry source lab-human (attested human).
provenance:
  verified_sources: [lab-human]
  cutoff: "2022-11-30"
"""


# --------------------------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------------------------


class SpellingModel:
    """Character-unigram spelling model with an end-of-word symbol, add-one smoothed, fitted on
    word types; a character never seen gets one share of the add-one mass spread over 1,000
    nominal characters. log_prob(word) is the natural log of the probability of the spelling."""

    OTHER_CHARS = 1000

    def __init__(self, words: Iterable[str]):
        chars: Counter = Counter()
        n = 0
        for w in words:
            chars.update(w)
            n += 1
        denom = sum(chars.values()) + n + len(chars) + 2  # + end symbol + the "other" bucket
        self._log = {c: math.log((k + 1) / denom) for c, k in chars.items()}
        self._end = math.log((n + 1) / denom)
        self._other = math.log(1 / denom / self.OTHER_CHARS)

    def log_prob(self, word: str) -> float:
        get, other = self._log.get, self._other
        return sum(get(c, other) for c in word) + self._end


class NgramLM:
    """Word-level interpolated Kneser-Ney trigram LM with an open vocabulary.

    p(w | u v) = max(c(uvw) - D, 0) / c(uv.) + D N(uv.) / c(uv.) * p2(w | v)
    p2(w | v) = max(N(.vw) - D, 0) / N(.v.) + D N(v.) / N(.v.) * p1(w)       (continuation counts)
    p1(w)     = max(N(.w) - D, 0) / N(..), and p1(<unk>) = D * types / N(..)
    An unseen context skips its level. An unknown word's probability is p(<unk> | u v) times
    the spelling model's. Words are `tokenize`'s (lower-cased); each document is padded
    <s> <s> ... </s>. Implements the monitor's protocol: describe, score, generate.
    """

    def __init__(self, texts: Iterable[str], discount: float = 0.75):
        self.d = discount
        tri: Counter = Counter()
        n_words = 0
        for text in texts:
            words = tokenize(text)
            n_words += len(words)
            seq = [BOS, BOS, *words, EOS]
            tri.update(zip(seq, seq[1:], seq[2:]))
        c3: dict = {}
        c2: dict = {}
        for (u, v, w), c in tri.items():
            c3.setdefault((u, v), {})[w] = c
            row = c2.setdefault(v, {})
            row[w] = row.get(w, 0) + 1
        c1: dict = {}
        for row in c2.values():
            for w in row:
                c1[w] = c1.get(w, 0) + 1
        self.train_words = n_words
        self._c3, self._c2 = c3, c2
        self._t3 = {ctx: _total_and_backoff(row, discount) for ctx, row in c3.items()}
        self._t2 = {v: _total_and_backoff(row, discount) for v, row in c2.items()}
        t1 = sum(c1.values())
        self._p1 = {w: (c - discount) / t1 for w, c in c1.items()}
        self._p_unk = discount * len(c1) / t1
        self._spell = SpellingModel(w for w in c1 if w != EOS)
        self._top: dict = {}
        self._table3: dict = {}
        self._table2: dict = {}
        self._table1 = _cumulative(self._p1)

    def describe(self) -> dict:
        return {
            "kind": "ngram",
            "order": 3,
            "smoothing": f"interpolated Kneser-Ney, discount {self.d}, open vocabulary (<unk> x character unigram)",
            "vocabulary": len(self._p1) - 1,  # without </s>
            "train_words": self.train_words,
            "trigram_contexts": len(self._c3),
        }

    # -- probabilities -------------------------------------------------------------------------

    def _prob2(self, v: str, w: str) -> float:
        p1 = self._p_unk if w == UNK else self._p1.get(w, 0.0)
        row = self._c2.get(v)
        if row is None:
            return p1
        t, b = self._t2[v]
        return max(row.get(w, 0) - self.d, 0.0) / t + b * p1

    def _prob3(self, u: str, v: str, w: str) -> float:
        p2 = self._prob2(v, w)
        row = self._c3.get((u, v))
        if row is None:
            return p2
        t, b = self._t3[(u, v)]
        return max(row.get(w, 0) - self.d, 0.0) / t + b * p2

    def logprob(self, u: str, v: str, w: str) -> float:
        """Natural-log probability of word w after u v (w lower-cased, not <s>)."""
        if w in self._p1:
            return math.log(self._prob3(u, v, w))
        return math.log(self._prob3(u, v, UNK)) + self._spell.log_prob(w)

    # -- top-k ----------------------------------------------------------------------------------
    # A word outside the continuations of u v has p = b(uv) p2(w | v): among those the order is
    # p2's, so the top k of p3 lie in cont(uv) + top-k of p2(. | v); likewise top-k of p2 lie in
    # cont(v) + top-k of p1. <unk> is not a word and never counts. Ties broken by the word.

    def _topk1(self, k: int) -> tuple:
        key = ("1", k)
        if key not in self._top:
            self._top[key] = tuple(heapq.nlargest(k, self._p1, key=lambda w: (self._p1[w], w)))
        return self._top[key]

    def _topk2(self, v: str, k: int) -> tuple:
        key = ("2", v, k)
        top = self._top.get(key)
        if top is None:
            cands = set(self._topk1(k)).union(self._c2.get(v, ()))
            top = tuple(heapq.nlargest(k, cands, key=lambda w: (self._prob2(v, w), w)))
            self._top[key] = top
        return top

    def top(self, u: str, v: str, k: int) -> tuple[tuple, list]:
        """The k most likely words after u v, most likely first, and their cumulative
        probabilities (for top-k sampling)."""
        key = ("3", u, v, k)
        top = self._top.get(key)
        if top is None:
            cands = set(self._topk2(v, k)).union(self._c3.get((u, v), ()))
            best = heapq.nlargest(k, ((self._prob3(u, v, w), w) for w in cands))
            top = self._top[key] = (tuple(w for _, w in best), list(itertools.accumulate(p for p, _ in best)))
        return top

    def topk(self, u: str, v: str, k: int) -> frozenset:
        key = ("3set", u, v, k)
        top = self._top.get(key)
        if top is None:
            top = self._top[key] = frozenset(self.top(u, v, k)[0])
        return top

    def score(self, text: str, k: int) -> list[tuple[int, int, float | None, bool | None]]:
        """Every word of `text` as (start, end, logprob, in_top_k), in order. The first word has
        no context (None, None), as it would for a causal LM; an unknown word is never in the
        top k (the model cannot name it)."""
        out: list = []
        u = v = None
        for m in _WORD.finditer(text):
            w = m.group().lower()
            if v is None:
                out.append((m.start(), m.end(), None, None))
                u, v = BOS, w
                continue
            out.append((m.start(), m.end(), self.logprob(u, v, w), w in self.topk(u, v, k)))
            u, v = v, w
        return out

    # -- sampling -------------------------------------------------------------------------------
    # The interpolation is sampled as the mixture it is: with probability 1 - b(uv) a word of the
    # discounted trigram counts, else the same one level down; at the unigram level only known
    # words (no <unk>). Per-context (keys, cumulative weights) tables are built lazily.

    def _draw(self, u: str, v: str, rng: random.Random) -> str:
        table = self._table3.get((u, v))
        if table is None and (u, v) in self._c3:
            table = self._table3[(u, v)] = _cumulative(self._c3[(u, v)], self.d)
        if table is not None:
            keys, cum, total = table
            r = rng.random() * total
            if r < cum[-1]:
                return keys[bisect.bisect_right(cum, r)]
        table = self._table2.get(v)
        if table is None and v in self._c2:
            table = self._table2[v] = _cumulative(self._c2[v], self.d)
        if table is not None:
            keys, cum, total = table
            r = rng.random() * total
            if r < cum[-1]:
                return keys[bisect.bisect_right(cum, r)]
        keys, cum, _ = self._table1
        return keys[bisect.bisect_right(cum, rng.random() * cum[-1])]

    def sample_words(self, context: Sequence[str], max_words: int, rng: random.Random,
                     top_k: int | None = None) -> list[str]:
        """Words sampled after `context` until </s> or `max_words`: from the full distribution
        over known words, or (top_k) from its k most likely words renormalised, the way
        `transformers`' generate samples by default (top_k=50)."""
        u, v = ([BOS, BOS, *context])[-2:]
        out: list[str] = []
        while len(out) < max_words:
            if top_k:
                keys, cum = self.top(u, v, top_k)
                w = keys[bisect.bisect_right(cum, rng.random() * cum[-1])]
            else:
                w = self._draw(u, v, rng)
            if w == EOS:
                break
            out.append(w)
            u, v = v, w
        return out

    def generate(self, prompts: list[str], max_new_tokens: int, seed: int) -> list[str]:
        """One continuation per prompt (only the new words, joined by spaces), sampled at
        temperature 1 from the model's distribution over known words; stops at </s> or after
        max_new_tokens words. An empty prompt starts a document."""
        rng = random.Random(seed)
        return [" ".join(self.sample_words(tokenize(p), max_new_tokens, rng)) for p in prompts]


def _total_and_backoff(row: dict, d: float) -> tuple[int, float]:
    total = sum(row.values())
    return total, d * len(row) / total


def _cumulative(row: dict, d: float = 0.0) -> tuple[list, list, float]:
    """(keys, cumulative discounted weights, undiscounted total) of one count row."""
    keys = list(row)
    cum = list(itertools.accumulate(row[w] - d for w in keys))
    return keys, cum, sum(row.values())


# --------------------------------------------------------------------------------------------
# Settings and data
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    seeds: tuple[int, ...] = (0, 1, 2)
    arms: tuple[str, ...] = ARMS
    generations: int = 5  # later generations: the lab trains generations 0..this
    anchor_docs: int = 300  # the monitor's anchor, held out from everything, every seed
    gen0_docs: int = 1250  # generation 0's human training set; also the size of every web
    fresh_docs: int = 250  # fresh human documents in each later web
    synthetic_docs: int = 1000  # documents sampled from the previous generation into each web
    synthetic_max_words: int = 400
    # the web's synthetic documents are sampled top-k (transformers' default for sampling is
    # top_k=50); None: from the full distribution (temperature 1), what the monitor does
    web_top_k: int | None = 50
    min_doc_words: int = 30  # the web keeps documents of at least this many words (human or not)
    discount: float = 0.75
    monitor: dict = field(default_factory=lambda: {
        "prompts": 32, "prompt_words": 24, "continuation_words": 48, "k": 10, "max_doc_words": 400})

    @property
    def web_docs(self) -> int:
        return self.fresh_docs + self.synthetic_docs


QUICK = Settings(seeds=(0,), arms=("raw-replace", "curated-attested"), generations=2, anchor_docs=100,
                 gen0_docs=300, fresh_docs=60, synthetic_docs=240)

# file -> (rows kept, the licence note for rows without a `license` field); LICENSES.md has more
SOURCES = {
    "labeled-dev.jsonl": "MIT (Fast-DetectGPT evaluation files); underlying texts keep their own terms",
    "labeled-modern.jsonl": None,  # every row has its own (CC BY-SA 4.0 / CC BY 3.0)
    "human-more.jsonl": "the terms of the source package named in source_path",
}


def stable_int(*parts) -> int:
    """A 64-bit integer from sha256 of the parts: seeds and orders that no Python hash changes."""
    return int.from_bytes(hashlib.sha256("/".join(map(str, parts)).encode()).digest()[:8], "big")


def load_human_docs(data: Path = DATA, min_words: int = 30) -> list[dict]:
    """The human rows of the repo's training data (label "human"), ids prefixed by file,
    exact duplicate texts and texts under `min_words` words dropped, in id order."""
    docs, seen = [], set()
    for name, note in SOURCES.items():
        with open(data / name, encoding="utf-8") as f:
            rows = [json.loads(line) for line in f if line.strip()]
        for r in rows:
            if r.get("label") != "human" or not isinstance(r.get("text"), str):
                continue
            docs.append({"id": f"{Path(name).stem}/{r['id']}", "text": r["text"],
                         "license": r.get("license") or note, "domain": r.get("domain")})
    out = []
    for d in sorted(docs, key=lambda d: d["id"]):
        if d["text"] in seen or len(tokenize(d["text"])) < min_words:
            continue
        seen.add(d["text"])
        out.append(d)
    return out


@dataclass(frozen=True)
class Pools:
    gen0: list
    fresh: list  # fresh[g - 1]: the human documents of web g


def split_anchor(docs: Sequence[dict], n: int) -> tuple[list, list]:
    """(anchor, rest): the anchor is the first n documents in sha256 order: one for every seed."""
    order = sorted(docs, key=lambda d: stable_int("anchor", d["id"]))
    return order[:n], order[n:]


def split_pools(rest: Sequence[dict], s: Settings, seed: int) -> Pools:
    """Disjoint per-seed pools: generation 0's training set, then one fresh pool per later web."""
    need = s.gen0_docs + s.generations * s.fresh_docs
    if len(rest) < need:
        raise SystemExit(f"collapse lab: {len(rest)} human documents outside the anchor, {need} needed")
    order = sorted(rest, key=lambda d: stable_int("pool", seed, d["id"]))
    human = [dict(d, synthetic=False) for d in order]
    start = s.gen0_docs
    fresh = [human[start + i * s.fresh_docs: start + (i + 1) * s.fresh_docs] for i in range(s.generations)]
    return Pools(human[:start], fresh)


def sample_web_docs(lm: NgramLM, s: Settings, seed: int, generation: int) -> list[dict]:
    """`s.synthetic_docs` documents written by `lm` (generation - 1) from an empty context (a
    document start), top-k sampled (`s.web_top_k`), keeping those of at least `min_doc_words`
    words, as for human text."""
    rng = random.Random(stable_int("web", seed, generation))
    out = []
    while len(out) < s.synthetic_docs:
        words = lm.sample_words((), s.synthetic_max_words, rng, top_k=s.web_top_k)
        if len(words) >= s.min_doc_words:
            out.append({"id": f"syn-s{seed}-g{generation}-{len(out):05d}", "text": " ".join(words),
                        "synthetic": True, "model_generation": generation - 1})
    return out


def train_stats(train: Sequence[dict]) -> dict:
    words = [len(tokenize(d["text"])) for d in train]
    syn_words = sum(w for w, d in zip(words, train) if d["synthetic"])
    return {
        "documents": len(train),
        "unique_documents": len({d["id"] for d in train}),
        "words": sum(words),
        "synthetic_share_documents": round(sum(d["synthetic"] for d in train) / len(train), 6),
        "synthetic_share_words": round(syn_words / sum(words), 6) if sum(words) else None,
    }


# --------------------------------------------------------------------------------------------
# Curation: the web through `collapseguard run`, the training set drawn by sample_weight
# --------------------------------------------------------------------------------------------


def web_record(doc: dict, attested: bool) -> dict:
    """A web document as the stage reads it. Human: source lab-human (the verified allowlist),
    dated before the cutoff, its licence in metadata. Synthetic: dated after it; attested with
    its generator, or unattested as source "web" (only the detector can catch it)."""
    if not doc["synthetic"]:
        return {"id": doc["id"], "text": doc["text"], "source": "lab-human", "timestamp": HUMAN_TS,
                "metadata": {"license": doc.get("license"), "domain": doc.get("domain")}}
    rec = {"id": doc["id"], "text": doc["text"], "source": "lab-model" if attested else "web",
           "timestamp": SYNTHETIC_TS}
    if attested:
        rec["generator"] = f"lab-gen-{doc['model_generation']}"
    return rec


def collapseguard_command() -> list[str]:
    exe = Path(sys.executable).with_name("collapseguard")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "collapseguard.pipeline.cli"]


def run_collapseguard(web: Sequence[dict], attested: bool, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    shard, config, out = folder / "web.jsonl", folder / "config.yaml", folder / "out"
    with open(shard, "w", encoding="utf-8") as f:
        for d in web:
            f.write(json.dumps(web_record(d, attested), ensure_ascii=False) + "\n")
    config.write_text(CURATE_CONFIG, encoding="utf-8")
    cmd = [*collapseguard_command(), "run", "--input", str(shard), "--output", str(out), "--config", str(config),
           "--scoring-model", "none", "--overwrite"]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"collapse lab: {' '.join(cmd)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return out


def read_strata(out: Path) -> dict[str, list[dict]]:
    """Rows of every stratum folder the run wrote (id order), the columns the lab reads."""
    import pyarrow.parquet as pq

    strata = {}
    for folder in sorted(p for p in out.iterdir() if p.is_dir() and not p.name.startswith("_")):
        files = sorted(folder.glob("*.parquet"))
        if not files:
            continue
        cols = ["id", "text", "stratum", "provenance", "p_synthetic", "sample_weight"]
        rows = [r for f in files for r in pq.read_table(f, columns=cols).to_pylist()]
        strata[folder.name] = sorted(rows, key=lambda r: r["id"])
    return strata


def draw_training_set(strata: dict[str, list[dict]], budget: int, rng: random.Random,
                      names: Sequence[str] = None) -> list[dict]:
    """`budget` rows drawn with replacement from the training strata (or `names`), p
    proportional to sample_weight (anchor, review and rejected never enter)."""
    rows = [r for name in (names or TRAINING_STRATA) for r in strata.get(name, ())]
    weights = [max(float(r["sample_weight"] or 0.0), 0.0) for r in rows]
    if not rows or sum(weights) <= 0:
        raise SystemExit("collapse lab: the curated strata hold no weight to draw from")
    picked = rng.choices(rows, weights=weights, k=budget)
    return [{"id": r["id"], "text": r["text"], "synthetic": r["id"].startswith("syn-")} for r in picked]


def curation_stats(web: Sequence[dict], strata: dict[str, list[dict]]) -> dict:
    """Where the web's human and synthetic documents went, their weight shares, and what the
    detector said of the synthetic ones."""
    synthetic_ids = {d["id"] for d in web if d["synthetic"]}
    placed, weight = {}, {"human": 0.0, "synthetic": 0.0}
    p_syn = []
    for name, rows in strata.items():
        h = sum(r["id"] not in synthetic_ids for r in rows)
        placed[name] = {"human": h, "synthetic": len(rows) - h}
        if name in TRAINING_STRATA:
            for r in rows:
                kind = "synthetic" if r["id"] in synthetic_ids else "human"
                weight[kind] += float(r["sample_weight"] or 0.0)
                if kind == "synthetic" and r["p_synthetic"] is not None:
                    p_syn.append(r["p_synthetic"])
    total = weight["human"] + weight["synthetic"]
    n_placed = sum(v["human"] + v["synthetic"] for v in placed.values())
    return {
        "strata": placed,
        "not_in_any_stratum": len(web) - n_placed,  # rejected
        "synthetic_weight_share": round(weight["synthetic"] / total, 6) if total else None,
        "synthetic_p_synthetic_mean": round(statistics.fmean(p_syn), 6) if p_syn else None,
        "synthetic_p_synthetic_max": max(p_syn) if p_syn else None,
    }


# --------------------------------------------------------------------------------------------
# The generations
# --------------------------------------------------------------------------------------------


class Clock:
    """Elapsed time for progress lines and the timings section (never in the results)."""

    def __init__(self):
        self.t0 = time.perf_counter()
        self.timings: dict[str, dict] = {}

    def log(self, msg: str) -> None:
        print(f"[{time.perf_counter() - self.t0:7.1f}s] {msg}", flush=True)

    def timed(self, key: str, step: str, fn: Callable, *args, **kwargs):
        t = time.perf_counter()
        out = fn(*args, **kwargs)
        self.timings.setdefault(key, {})[step] = round(time.perf_counter() - t, 3)
        return out


def monitor(lm: NgramLM, anchor: Sequence[dict], s: Settings, seed: int) -> dict:
    from collapseguard.models.monitor import run_monitor

    docs = [{"id": d["id"], "text": d["text"], "lang": "en"} for d in anchor]
    return run_monitor(lm, docs, seed=seed, **s.monitor)


def run_arm(arm: str, seed: int, pools: Pools, gen0: NgramLM, anchor: Sequence[dict], s: Settings,
            work: Path, clock: Clock) -> list[dict]:
    """Generations 1..G of one arm: the web, the training set, the model, the monitor."""
    runs, lm, accumulated = [], gen0, list(pools.gen0)
    # curated-accumulate's pool: generation 0's human documents (weight 1) and every curated web
    pool = [{"id": d["id"], "text": d["text"], "sample_weight": 1.0} for d in pools.gen0]
    for g in range(1, s.generations + 1):
        key = f"seed{seed}/{arm}/gen{g}"
        web = list(pools.fresh[g - 1]) + clock.timed(key, "sample", sample_web_docs, lm, s, seed, g)
        curation = None
        if arm == "raw-replace":
            train = web
        elif arm == "raw-accumulate":
            accumulated += web
            train = accumulated
        elif arm in ("curated-attested", "curated-unattested"):
            out = clock.timed(key, "collapseguard", run_collapseguard, web, arm == "curated-attested", work / key)
            strata = read_strata(out)
            train = draw_training_set(strata, s.web_docs, random.Random(stable_int("draw", seed, arm, g)))
            curation = curation_stats(web, strata)
            shutil.rmtree(work / key, ignore_errors=True)
        elif arm == "curated-accumulate":
            out = clock.timed(key, "collapseguard", run_collapseguard, web, True, work / key)
            strata = read_strata(out)
            pool += [r for name in TRAINING_STRATA for r in strata.get(name, ())]
            budget = len(pools.gen0) + g * s.web_docs  # raw-accumulate's training set size
            train = draw_training_set({"pool": pool}, budget, random.Random(stable_int("draw", seed, arm, g)),
                                      ("pool",))
            curation = curation_stats(web, strata)
            shutil.rmtree(work / key, ignore_errors=True)
        else:
            raise ValueError(arm)
        lm = clock.timed(key, "fit", NgramLM, [d["text"] for d in train], s.discount)
        result = clock.timed(key, "monitor", monitor, lm, anchor, s, seed)
        runs.append({"seed": seed, "arm": arm, "generation": g, "train": train_stats(train), "curation": curation,
                     "monitor": result})
        clock.log(f"seed {seed} {arm:<18} gen {g}: {_brief(runs[-1])}")
    return runs


def _brief(run: dict) -> str:
    m, t = run["monitor"], run["train"]
    bits = [f"tail ppl {get(m, 'perplexity.all.tail.perplexity'):,.0f}",
            f"tail recall {get(m, 'tail_recall_at_k.tail'):.3f}",
            f"distinct-2 {get(m, 'generation.model.distinct_2'):.3f}",
            f"train {t['documents']} docs ({t['unique_documents']} unique), "
            f"{t['synthetic_share_documents']:.1%} synthetic"]
    return ", ".join(bits)


def run_lab(s: Settings, work: Path, clock: Clock) -> dict:
    docs = load_human_docs(min_words=s.min_doc_words)
    anchor, rest = split_anchor(docs, s.anchor_docs)
    clock.log(f"{len(docs)} human documents: anchor {len(anchor)}, {len(rest)} for training pools; "
              f"{len(s.seeds)} seed(s) x {len(s.arms)} arm(s) x generations 0..{s.generations}")
    runs = []
    for seed in s.seeds:
        pools = split_pools(rest, s, seed)
        key = f"seed{seed}/gen0"
        gen0 = clock.timed(key, "fit", NgramLM, [d["text"] for d in pools.gen0], s.discount)
        result = clock.timed(key, "monitor", monitor, gen0, anchor, s, seed)
        for arm in s.arms:  # one generation-0 model per seed, shared by every arm
            runs.append({"seed": seed, "arm": arm, "generation": 0, "train": train_stats(pools.gen0),
                         "curation": None, "monitor": result})
        clock.log(f"seed {seed} generation 0: {_brief(runs[-1])}")
        for arm in s.arms:
            runs += run_arm(arm, seed, pools, gen0, anchor, s, work, clock)
    return {
        "settings": dataclasses.asdict(s),
        "data": {"human_documents": len(docs), "anchor_documents": len(anchor),
                 "anchor_ids_sha256": hashlib.sha256("\n".join(d["id"] for d in anchor).encode()).hexdigest(),
                 "files": {name: f"models/training/data/{name}" for name in SOURCES},
                 "licenses": dict(Counter(d["license"] for d in docs).most_common())},
        "design": {
            "model": "NgramLM: word-level interpolated Kneser-Ney trigram, open vocabulary",
            "web": f"{s.fresh_docs} fresh human + {s.synthetic_docs} documents sampled from the previous "
                   "generation's model from an empty context (a document start), "
                   + (f"top-k {s.web_top_k}" if s.web_top_k else "full distribution, temperature 1")
                   + ", documents under "
                   f"{s.min_doc_words} words not kept",
            "raw-replace": "train on web_g",
            "raw-accumulate": "train on the generation-0 set plus webs 1..g",
            "curated": f"web_g through collapseguard run --scoring-model none; {s.web_docs} rows drawn with "
                       "replacement from human_verified, human_unverified, synthetic_known, synthetic_suspected "
                       "with p proportional to sample_weight",
            "curated-accumulate": "as curated-attested, but the rows are drawn from the generation-0 human set "
                                  "(weight 1) plus every curated web so far, to raw-accumulate's training size",
        },
        "runs": runs,
    }


# --------------------------------------------------------------------------------------------
# Summaries, tables, figures
# --------------------------------------------------------------------------------------------

# key, path in the monitor's result, label, +1 where a rise is what collapse does, -1 a fall
METRICS = (
    ("tail_ppl", "perplexity.all.tail.perplexity", "tail perplexity (Zipf < 3)", +1),
    ("torso_ppl", "perplexity.all.torso.perplexity", "torso perplexity (3 <= Zipf < 5)", +1),
    ("head_ppl", "perplexity.all.head.perplexity", "head perplexity (Zipf >= 5)", +1),
    ("tail_recall", "tail_recall_at_k.tail", "tail recall@k", -1),
    ("distinct_1", "generation.model.distinct_1", "distinct-1 of generations", -1),
    ("distinct_2", "generation.model.distinct_2", "distinct-2 of generations", -1),
    ("distinct_3", "generation.model.distinct_3", "distinct-3 of generations", -1),
    ("msttr", "generation.model.msttr", "MSTTR of generations", -1),
    ("self_similarity", "generation.model.self_similarity", "self-similarity of generations", +1),
    ("vocabulary", "generation.model.vocabulary", "vocabulary of generations", -1),
)


def series(runs: Sequence[dict], path: str) -> dict[str, dict[int, list]]:
    """arm -> generation -> per-seed values (seed order)."""
    out: dict = {}
    for r in sorted(runs, key=lambda r: (r["arm"], r["generation"], r["seed"])):
        v = get(r["monitor"], path)
        if v is not None:
            out.setdefault(r["arm"], {}).setdefault(r["generation"], []).append(float(v))
    return out


def human_reference(runs: Sequence[dict], path: str) -> float | None:
    """The same measure on the human continuations of the same prompts (generation metrics)."""
    if not path.startswith("generation.model."):
        return None
    vals = [get(r["monitor"], path.replace(".model.", ".human.")) for r in runs if r["generation"] == 0]
    vals = [float(v) for v in vals if v is not None]
    return statistics.fmean(vals) if vals else None


def mean_sd(values: Sequence[float]) -> tuple[float, float | None]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else None)


def verdict(per_gen: dict[int, list], direction: int, first: int = 0) -> dict | None:
    """Change from generation `first` to the last, per seed and on average, against seed noise:
    the pooled standard deviation over seeds of the two generations' values. Beyond noise:
    |mean change| > 2 noise and every seed moved the same way. None without both generations."""
    last = max(per_gen)
    if first not in per_gen or last <= first:
        return None
    a, b = per_gen[first], per_gen[last]
    deltas = [y - x for x, y in zip(a, b)]
    change = statistics.fmean(deltas)
    noise = None
    if len(a) > 1 and len(b) > 1:
        noise = math.sqrt((statistics.variance(a) + statistics.variance(b)) / 2)
    same_sign = all(d > 0 for d in deltas) or all(d < 0 for d in deltas)
    beyond = None if noise is None else bool(abs(change) > 2 * noise and same_sign)
    return {"from_generation": first, "to_generation": last, "change": change,
            "relative": change / abs(statistics.fmean(a)) if statistics.fmean(a) else None,
            "per_seed": deltas, "noise_sd": noise, "beyond_2sd": beyond,
            "collapse_direction": change * direction > 0}


def summarize(runs: Sequence[dict]) -> dict:
    out = {}
    for key, path, label, direction in METRICS:
        per_arm = series(runs, path)
        out[key] = {
            "label": label, "path": path, "collapse_direction": "up" if direction > 0 else "down",
            "human_reference": human_reference(runs, path),
            "arms": {arm: {"by_generation": {g: {"mean": mean_sd(v)[0], "sd": mean_sd(v)[1], "min": min(v),
                                                 "max": max(v), "values": v} for g, v in sorted(gens.items())},
                           "verdict": verdict(gens, direction),
                           # from generation 1 on: the recursive part alone, without the one-time
                           # change of training set between generation 0 and the first web
                           "verdict_from_1": verdict(gens, direction, first=1)}
                     for arm, gens in per_arm.items()},
        }
    return out


def _fmt(x: float | None) -> str:
    if x is None:
        return "–"
    ax = abs(x)
    if ax >= 1000:
        return f"{x:,.0f}"
    if ax >= 100:
        return f"{x:.1f}"
    if ax >= 10:
        return f"{x:.2f}"
    return f"{x:.3f}"


def results_markdown(lab: dict, summary: dict, arms: Sequence[str]) -> str:
    s = lab["settings"]
    n_seeds = len(s["seeds"])
    lines = [
        "# Collapse lab results",
        "",
        f"Model: word-level interpolated Kneser-Ney trigram (open vocabulary). Seeds {list(s['seeds'])}; "
        f"generation 0: {s['gen0_docs']} human documents; each later web: {s['fresh_docs']} fresh human + "
        f"{s['synthetic_docs']} sampled from the previous generation "
        f"({s['synthetic_docs'] / (s['fresh_docs'] + s['synthetic_docs']):.0%} synthetic; "
        + (f"top-{s['web_top_k']} sampling" if s["web_top_k"] else "full-distribution sampling")
        + " from a document start). "
        f"Monitor: {lab['data']['anchor_documents']} held-out human anchor documents (the same everywhere), "
        f"k = {s['monitor']['k']}, {s['monitor']['prompts']} prompts of {s['monitor']['prompt_words']} words, "
        f"{s['monitor']['continuation_words']}-word continuations.",
        "",
        f"Cells: mean ± sd over {n_seeds} seed(s) (generation 0 is one model per seed, shared by every arm).",
        "",
    ]
    gens = sorted({r["generation"] for r in lab["runs"]})
    for key, _, _, _ in METRICS:
        m = summary[key]
        lines += [f"## {m['label']} (collapse: {m['collapse_direction']})", ""]
        lines.append("| arm | " + " | ".join(f"gen {g}" for g in gens) + " |")
        lines.append("|---|" + "---|" * len(gens))
        for arm in arms:
            row = m["arms"].get(arm)
            if row is None:
                continue
            cells = []
            for g in gens:
                c = row["by_generation"].get(g)
                sd = "" if c is None or c["sd"] is None else f" ± {_fmt(c['sd'])}"
                cells.append("–" if c is None else _fmt(c["mean"]) + sd)
            lines.append(f"| {arm} | " + " | ".join(cells) + " |")
        if m["human_reference"] is not None:
            lines.append(f"| *human continuations* | {_fmt(m['human_reference'])} |" + " |" * (len(gens) - 1))
        lines.append("")
    lines += ["## Change over the generations", "",
              "Change = mean over seeds of (last generation − earlier generation); noise = pooled sd over seeds of "
              "the two generations' values; *beyond noise*: |change| > 2 × noise and every seed moved the same way; "
              "*collapse dir.*: the change goes the way collapse moves the metric. "
              "Generation 0 → last includes the "
              "one-time switch from the generation-0 human set to the first web; generation 1 → last is the "
              "recursion alone.", ""]
    lines.append("| metric | arm | gen 0 → last | relative | noise sd | beyond noise | collapse dir. "
                 "| gen 1 → last | relative | noise sd | beyond noise | collapse dir. |")
    lines.append("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for key, _, label, _ in METRICS:
        for arm in arms:
            row = summary[key]["arms"].get(arm)
            if row is None:
                continue
            cells = []
            for v in (row["verdict"], row["verdict_from_1"]):
                if v is None:
                    cells += ["–"] * 5
                    continue
                beyond = "n/a (1 seed)" if v["beyond_2sd"] is None else ("**yes**" if v["beyond_2sd"] else "no")
                rel = "–" if v["relative"] is None else f"{v['relative']:+.1%}"
                way = "yes" if v["collapse_direction"] else "no"
                cells += [_fmt(v["change"]), rel, _fmt(v["noise_sd"]), beyond, way]
            lines.append(f"| {label} | {arm} | " + " | ".join(cells) + " |")
    lines += ["", "## Training sets and curation", "",
              "Per arm and generation, mean over seeds: share of synthetic documents in the training set, "
              "unique documents, and (curated arms) where the web's synthetic documents went.", ""]
    lines.append("| arm | gen | synthetic share (docs) | unique docs | words | synthetic docs by stratum |")
    lines.append("|---|---|---|---|---|---|")
    for arm in arms:
        for g in gens:
            rs = [r for r in lab["runs"] if r["arm"] == arm and r["generation"] == g]
            if not rs or g == 0:
                continue
            share = statistics.fmean(r["train"]["synthetic_share_documents"] for r in rs)
            uniq = statistics.fmean(r["train"]["unique_documents"] for r in rs)
            words = statistics.fmean(r["train"]["words"] for r in rs)
            where = "–"
            if rs[0]["curation"]:
                tally: Counter = Counter()
                for r in rs:
                    for name, c in r["curation"]["strata"].items():
                        tally[name] += c["synthetic"]
                    tally["rejected"] += r["curation"]["not_in_any_stratum"]
                where = ", ".join(f"{k} {v / len(rs):.0f}" for k, v in sorted(tally.items()) if v)
            lines.append(f"| {arm} | {g} | {share:.2%} | {uniq:.0f} | {words:,.0f} | {where} |")
    return "\n".join(lines) + "\n"


COLORS = {"raw-replace": "#d62728", "raw-accumulate": "#ff7f0e", "curated-attested": "#1f77b4",
          "curated-unattested": "#2ca02c", "curated-accumulate": "#9467bd"}
PANEL_W, PANEL_H, COLS = 300, 220, 5
PAD_L, PAD_R, PAD_T, PAD_B = 58, 12, 28, 30


def nice_ticks(lo: float, hi: float, n: int = 4) -> list[float]:
    if hi <= lo:
        hi = lo + (abs(lo) or 1.0)
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.ceil(lo / step) * step
    return [start + i * step for i in range(int((hi - start) / step + 1e-9) + 1)]


def log_ticks(lo: float, hi: float) -> list[float]:
    """Ticks (in log10 units) inside [lo, hi]: at 1, 2, 5 x 10^e; at powers of ten where that
    gives more than six; at every digit, or linear ticks, where it gives fewer than three."""
    def at(mantissas) -> list[float]:
        ticks = (math.log10(m) + e for e in range(math.floor(lo), math.ceil(hi) + 1) for m in mantissas)
        return [t for t in ticks if lo <= t <= hi]

    coarse = at((1, 2, 5))
    if len(coarse) > 6:
        return at((1,))
    if len(coarse) >= 3:
        return coarse
    digits = at(range(1, 10))
    if 3 <= len(digits) <= 8:
        return digits
    if len(digits) > 8:
        return digits[::2]
    return [math.log10(x) for x in nice_ticks(10 ** lo, 10 ** hi) if x > 0 and lo <= math.log10(x) <= hi]


def _log_scale(key: str) -> bool:
    return key.endswith("_ppl")  # perplexities span orders of magnitude (unknown words dominate the tail)


def _panel_range(metric: dict, log: bool) -> tuple[float, float]:
    """The y range of a panel, in log10 units on a log scale."""
    vals = [c[x] for arm in metric["arms"].values() for c in arm["by_generation"].values() for x in ("min", "max")]
    if metric["human_reference"] is not None:
        vals.append(metric["human_reference"])
    if log:
        vals = [math.log10(v) for v in vals if v > 0]
    lo, hi = min(vals), max(vals)
    pad = (hi - lo) * 0.08 or abs(hi) * 0.05 or 1.0
    return lo - pad, hi + pad


def _tick_label(t: float, log: bool) -> str:
    if log:
        v = 10 ** t
        return f"{v:.3g}".replace("e+0", "e").replace("e+", "e") if v >= 10_000 else f"{v:.4g}"
    if abs(t) >= 10_000:
        return f"{t:.2g}".replace("e+0", "e").replace("e+", "e")
    return f"{t:g}" if abs(t) >= 1 else f"{t:.3g}"


def svg_figure(summary: dict, arms: Sequence[str], title: str) -> str:
    """One panel per metric (x: generation, y: the metric), one line per arm (mean over seeds)
    with a band from the seeds' min to max; the human continuations' value dashed."""
    keys = [k for k, *_ in METRICS if summary[k]["arms"]]
    rows = math.ceil(len(keys) / COLS)
    legend_h = 46
    W, H = COLS * PANEL_W, rows * PANEL_H + legend_h
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" '
           'font-family="Helvetica, Arial, sans-serif" font-size="11">',
           f'<rect width="{W}" height="{H}" fill="white"/>',
           f'<text x="10" y="18" font-size="14" font-weight="bold">{_esc(title)}</text>']
    x = 10
    for arm in arms:
        c = COLORS.get(arm, "#555")
        out.append(f'<line x1="{x}" y1="34" x2="{x + 24}" y2="34" stroke="{c}" stroke-width="2.5"/>')
        out.append(f'<text x="{x + 30}" y="38">{_esc(arm)}</text>')
        x += 40 + 7 * len(arm)
    out.append(f'<line x1="{x}" y1="34" x2="{x + 24}" y2="34" stroke="#777" stroke-width="1.5" '
               'stroke-dasharray="5,3"/>')
    out.append(f'<text x="{x + 30}" y="38">human continuations</text>')
    out.append(f'<text x="{x + 170}" y="38" fill="#555">lines: mean over seeds; bands: min-max over seeds</text>')
    for i, key in enumerate(keys):
        m = summary[key]
        ox, oy = (i % COLS) * PANEL_W, legend_h + (i // COLS) * PANEL_H
        x0, x1, y0, y1 = ox + PAD_L, ox + PANEL_W - PAD_R, oy + PAD_T, oy + PANEL_H - PAD_B
        gens = sorted({g for arm in m["arms"].values() for g in arm["by_generation"]})
        log = _log_scale(key)
        lo, hi = _panel_range(m, log)
        gx = lambda g: x0 + (x1 - x0) * (g - gens[0]) / max(gens[-1] - gens[0], 1)  # noqa: E731
        gt = lambda t: y1 - (y1 - y0) * (t - lo) / (hi - lo)  # noqa: E731  (t in axis units)
        gy = lambda v: gt(math.log10(v) if log else v)  # noqa: E731
        arrow = "↑" if m["collapse_direction"] == "up" else "↓"
        out.append(f'<text x="{ox + PANEL_W / 2}" y="{oy + 18}" text-anchor="middle" font-weight="bold">'
                   f'{_esc(m["label"])} (collapse {arrow}){" log" if log else ""}</text>')
        out.append(f'<rect x="{x0}" y="{y0}" width="{x1 - x0}" height="{y1 - y0}" fill="none" stroke="#999"/>')
        for t in (log_ticks(lo, hi) if log else nice_ticks(lo, hi)):
            if lo <= t <= hi:
                out.append(f'<line x1="{x0}" y1="{gt(t):.1f}" x2="{x1}" y2="{gt(t):.1f}" stroke="#eee"/>')
                out.append(f'<text x="{x0 - 4}" y="{gt(t) + 4:.1f}" text-anchor="end">'
                           f'{_esc(_tick_label(t, log))}</text>')
        for g in gens:
            out.append(f'<text x="{gx(g):.1f}" y="{y1 + 14}" text-anchor="middle">{g}</text>')
        out.append(f'<text x="{(x0 + x1) / 2}" y="{y1 + 26}" text-anchor="middle" fill="#555">generation</text>')
        if m["human_reference"] is not None:
            y = gy(m["human_reference"])
            out.append(f'<line x1="{x0}" y1="{y:.1f}" x2="{x1}" y2="{y:.1f}" stroke="#777" stroke-dasharray="5,3"/>')
        for arm in arms:
            row = m["arms"].get(arm)
            if not row:
                continue
            c, pts = COLORS.get(arm, "#555"), sorted(row["by_generation"].items())
            band = [(gx(g), gy(v["max"])) for g, v in pts] + [(gx(g), gy(v["min"])) for g, v in reversed(pts)]
            out.append(f'<polygon points="{_pts(band)}" fill="{c}" fill-opacity="0.13" stroke="none"/>')
            line = [(gx(g), gy(v["mean"])) for g, v in pts]
            out.append(f'<polyline points="{_pts(line)}" fill="none" stroke="{c}" stroke-width="2"/>')
            for px, py in line:
                out.append(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="2.5" fill="{c}"/>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _pts(points) -> str:
    return " ".join(f"{x:.1f},{y:.1f}" for x, y in points)


def _esc(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def png_figure(summary: dict, arms: Sequence[str], title: str, path: Path) -> bool:
    """The same figure with matplotlib; False (and nothing written) when it is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import MaxNLocator
    except ImportError:
        return False
    keys = [k for k, *_ in METRICS if summary[k]["arms"]]
    rows = math.ceil(len(keys) / COLS)
    fig, axes = plt.subplots(rows, COLS, figsize=(4.2 * COLS, 3.3 * rows + 0.6), squeeze=False)
    for ax in axes.flat[len(keys):]:
        ax.set_visible(False)
    for ax, key in zip(axes.flat, keys):
        m = summary[key]
        for arm in arms:
            row = m["arms"].get(arm)
            if not row:
                continue
            pts = sorted(row["by_generation"].items())
            g = [p[0] for p in pts]
            c = COLORS.get(arm, "#555")
            ax.fill_between(g, [p[1]["min"] for p in pts], [p[1]["max"] for p in pts], color=c, alpha=0.13, lw=0)
            ax.plot(g, [p[1]["mean"] for p in pts], "-o", color=c, ms=3, lw=1.8, label=arm)
        if m["human_reference"] is not None:
            ax.axhline(m["human_reference"], color="#777", ls="--", lw=1.2, label="human continuations")
        arrow = "↑" if m["collapse_direction"] == "up" else "↓"
        ax.set_title(f"{m['label']} (collapse {arrow})", fontsize=9)
        ax.set_xlabel("generation", fontsize=8)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if _log_scale(key):
            ax.set_yscale("log")
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
    handles, labels = [], []
    for ax in axes.flat:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    fig.legend(handles, labels, loc="upper center", ncol=len(labels), fontsize=9, frameon=False,
               bbox_to_anchor=(0.5, 0.995))
    fig.suptitle(title + " (mean over seeds; bands: min-max)", fontsize=11, y=0.955)
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="collapse-lab-out", help="output folder (default: collapse-lab-out)")
    ap.add_argument("--quick", action="store_true",
                    help="smoke test: 1 seed, 2 arms, generations 0..2, small pools (about 15 s)")
    ap.add_argument("--seeds", type=int, nargs="+", help="override the seeds (default 0 1 2)")
    ap.add_argument("--generations", type=int, help="override the number of later generations")
    ap.add_argument("--arms", nargs="+", choices=ARMS, help="override the arms")
    ap.add_argument("--web-top-k", type=int, help="top-k of the web's sampler (default 50; 0: the full distribution)")
    return ap.parse_args(argv)


def usage_error(msg: str) -> NoReturn:
    """One line on stderr, exit status 2."""
    print(f"collapse lab: {msg}", file=sys.stderr)
    raise SystemExit(2)


def settings_from(ns: argparse.Namespace) -> Settings:
    s = QUICK if ns.quick else Settings()
    over = {}
    if ns.seeds:
        over["seeds"] = tuple(ns.seeds)
    if ns.generations is not None:
        if ns.generations < 1:
            usage_error("--generations must be at least 1")
        over["generations"] = ns.generations
    if ns.arms:
        over["arms"] = tuple(a for a in ARMS if a in ns.arms)
    if ns.web_top_k is not None:
        over["web_top_k"] = ns.web_top_k or None
    return dataclasses.replace(s, **over)


MARKER = ".collapse-lab"  # written into --out: the folder holds the lab's outputs, which a rerun replaces
OUTPUTS = ("results.json", "results.md", "collapse.svg", "collapse.png", "_work", MARKER)


def claim_output(out: Path) -> None:
    """Create --out, or reuse one that an earlier lab run wrote (it holds the marker and nothing
    but the lab's own files); anything else is refused, so the lab never replaces or deletes a
    file it did not write."""
    if out.exists():
        if not out.is_dir():
            usage_error(f"--out {out} exists and is not a folder")
        names = {p.name for p in out.iterdir()}
        if names and (MARKER not in names or not names <= set(OUTPUTS)):
            usage_error(f"--out {out} holds files the lab did not write; choose an empty or new folder")
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text("outputs of bench/collapse_lab.py; a rerun replaces them\n", encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    ns = parse_args(argv)
    s = settings_from(ns)
    out = Path(ns.out)
    claim_output(out)
    clock = Clock()
    work = out / "_work"
    try:
        lab = run_lab(s, work, clock)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    summary = summarize(lab["runs"])
    lab["summary"] = summary
    title = (f"Collapse lab: trigram LM, {len(s.seeds)} seed(s), web = {s.fresh_docs} fresh human + "
             f"{s.synthetic_docs} synthetic docs")
    (out / "results.md").write_text(results_markdown(lab, summary, s.arms), encoding="utf-8")
    (out / "collapse.svg").write_text(svg_figure(summary, s.arms, title), encoding="utf-8")
    wrote_png = png_figure(summary, s.arms, title, out / "collapse.png")
    lab["timings"] = {"total_s": round(time.perf_counter() - clock.t0, 1), "steps_s": clock.timings,
                      "png": "written" if wrote_png else "skipped: matplotlib is not installed"}
    (out / "results.json").write_text(json.dumps(lab, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    skipped = " (collapse.png skipped: matplotlib is not installed; `make lab` installs it)"
    clock.log(f"wrote {out}/results.json, results.md, collapse.svg" + (", collapse.png" if wrote_png else skipped))
    return 0


if __name__ == "__main__":
    sys.exit(main())
