"""Rebuilds the embedded sample corpus from models/training/data/labeled-dev.jsonl (deterministic).

    python pipeline/sample/build.py [PATH_TO_labeled-dev.jsonl]

The sample exercises every path of the stage: attested human text (allowlisted source; trusted
archive before the cutoff), unattested human and synthetic web text, generator-attested
synthetic text, a templated low-entropy shard (held for review) and a shard of broken lines
(rejected). Every format is represented: .jsonl, .jsonl.gz, .jsonl.zst and .parquet.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import random
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "shards")


def _key(r):
    return hashlib.sha256(r["id"].encode()).hexdigest()


def _ts(rng: random.Random, y0: int, y1: int) -> str:
    return f"{rng.randint(y0, y1)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:00:00Z"


def _jsonl(rows) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in rows).encode()


def _spam(rng: random.Random, i: int) -> str:
    products = ["shoes", "watches", "phones", "bags", "tickets"]
    p = products[i % len(products)]
    parts = []
    for _ in range(30):
        parts.append(rng.choice([
            f"Buy cheap {p} online now.", f"Best {p} deals today.", f"Cheap {p} for sale.",
            f"Click here for cheap {p}.", f"Top {p} at the best price.", f"Order {p} now and save.",
        ]))
    return " ".join(parts)


def build(src: str) -> None:
    rng = random.Random(20221130)
    rows = [json.loads(line) for line in open(src, encoding="utf-8")]
    pick = lambda label, domain, n, gen=None: sorted(  # noqa: E731
        [r for r in rows if r["label"] == label and r["domain"] == domain and (gen is None or r["generator"] == gen)],
        key=_key)[:n]

    def doc(r, **kw):
        d = {"id": f"sample-{r['id']}", "text": r["text"], "metadata": {"origin": r["source_path"], "domain": r["domain"]}}
        d.update(kw)
        return d

    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        os.remove(os.path.join(OUT, f))

    news = [doc(r, source="bbc-news-archive", url=f"https://www.bbc.co.uk/news/{i}", timestamp=_ts(rng, 2015, 2019))
            for i, r in enumerate(pick("human", "xsum_news", 70))]
    with open(os.path.join(OUT, "news-2015-2019.jsonl.gz"), "wb") as f:
        f.write(gzip.compress(_jsonl(news), mtime=0))

    wiki = [doc(r, source="wikipedia-dump", timestamp=_ts(rng, 2018, 2021)) for r in pick("human", "squad_wikipedia", 60)]
    wiki += [doc(r, source="gutenberg-verified") for r in pick("human", "squad_wikipedia", 70)[60:]]
    import zstandard

    with open(os.path.join(OUT, "reference-texts.jsonl.zst"), "wb") as f:
        f.write(zstandard.ZstdCompressor(level=10).compress(_jsonl(wiki)))

    import pyarrow as pa
    import pyarrow.parquet as pq

    stories = [doc(r, source="reddit-pushshift", timestamp=int(1_500_000_000 + 1_000_000 * i))
               for i, r in enumerate(pick("human", "writingprompts_story", 50))]
    for s in stories:
        s["metadata"] = json.dumps(s["metadata"], sort_keys=True)
    pq.write_table(pa.Table.from_pylist(stories), os.path.join(OUT, "forum-stories.parquet"))

    web_h = [doc(r, source="web-crawl-2024", timestamp=_ts(rng, 2024, 2025)) for r in pick("human", "xsum_news", 100)[70:]]
    web_s = [doc(r, source="web-crawl-2024", timestamp=_ts(rng, 2024, 2025))
             for d in ("xsum_news", "squad_wikipedia", "writingprompts_story") for r in pick("synthetic", d, 14)]
    web = sorted(web_h + web_s, key=lambda d: hashlib.sha256(d["id"].encode()).hexdigest())
    with open(os.path.join(OUT, "web-crawl-2024.jsonl"), "wb") as f:
        f.write(_jsonl(web))

    gen = [doc(r, source="model-outputs", generator=r["generator"], timestamp=_ts(rng, 2023, 2024))
           for d in ("xsum_news", "squad_wikipedia", "writingprompts_story") for r in pick("synthetic", d, 30)[14:28]]
    with open(os.path.join(OUT, "generated-continuations.jsonl"), "wb") as f:
        f.write(_jsonl(gen))

    spam = [{"id": f"spam-{i:03d}", "text": _spam(rng, i), "source": "seo-pages", "timestamp": _ts(rng, 2023, 2024)}
            for i in range(30)]
    with open(os.path.join(OUT, "seo-boilerplate.jsonl"), "wb") as f:
        f.write(_jsonl(spam))

    broken = io.BytesIO()
    broken.write(b'{"id": "broken-1", "text": "A fine record among broken ones. It stays."}\n')
    broken.write(b'{"id": "broken-2", "text": "unterminated\n')
    broken.write(b'{"id": "broken-3", "text": ""}\n')
    broken.write(b'{"id": "broken-4", "text": 42}\n')
    broken.write(b'["not", "an", "object"]\n')
    broken.write(b'{"id": "broken-5", "text": "bad bytes \xff\xfe here"}\n')
    broken.write(b'{"id": "broken-1", "text": "Same id as the first record: a duplicate."}\n')
    broken.write(b'{"id": "broken-6", "text": "Bad timestamp, kept with a warning.", "timestamp": "yesterday"}\n')
    with open(os.path.join(OUT, "broken-lines.jsonl"), "wb") as f:
        f.write(broken.getvalue())


if __name__ == "__main__":
    build(sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "..", "models", "training", "data", "labeled-dev.jsonl"))
