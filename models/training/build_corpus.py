"""Build the human side and the topic list of the detector's training set, offline.

    python models/training/build_corpus.py --labeled models/training/data/labeled-dev.jsonl --out models/training/data

Human text from more domains than labeled-dev's news, Wikipedia and stories, all written by
people and shipped on this machine: the Python reference documentation (pydoc topics), Python
standard-library docstrings, and Debian package documentation (/usr/share/doc READMEs and
FAQs). Paragraphs are cut to 60-400 words, whitespace-normalised like labeled-dev, and
filtered for prose (mostly letters, few code symbols). Topics for the synthetic side come from
the same places, so both labels cover the same subjects.
"""

from __future__ import annotations

import argparse
import glob
import gzip
import hashlib
import importlib
import json
import os
import pkgutil
import re
import sys


def prose(text: str) -> bool:
    words = text.split()
    if not 60 <= len(words) <= 400:
        return False
    letters = sum(c.isalpha() for c in text)
    symbols = sum(c in "{}[]()<>=_$#*|\\/`~^" for c in text)
    lower_words = sum(w.strip(".,;:!?\"'()").isalpha() and w.islower() for w in words) / len(words)
    return (letters / max(1, len(text)) > 0.72 and symbols / max(1, len(text)) < 0.02
            and lower_words > 0.65 and text.count(". ") >= 2)


def paragraphs(text: str):
    for block in re.split(r"\n\s*\n", text):
        block = " ".join(block.split())
        if prose(block):
            yield block


def pydoc_topics():
    from pydoc_data.topics import topics

    for name in sorted(topics):
        for i, p in enumerate(paragraphs(topics[name])):
            yield {"text": p, "domain": "python_reference", "source_path": f"pydoc_data.topics[{name}]#{i}",
                   "topic": f"the Python language feature '{name}'"}


def stdlib_docstrings():
    names = sorted(m.name for m in pkgutil.iter_modules() if m.module_finder.path.startswith(sys.base_prefix)
                   and not m.name.startswith("_") and "test" not in m.name)
    for name in names:
        try:
            mod = importlib.import_module(name)
        except Exception:  # noqa: BLE001 - platform-specific modules
            continue
        objs = [(name, mod)] + [(f"{name}.{k}", v) for k, v in sorted(vars(mod).items())
                                if not k.startswith("_") and getattr(v, "__module__", None) == name]
        for qual, obj in objs:
            doc = getattr(obj, "__doc__", None)
            if isinstance(doc, str):
                for i, p in enumerate(paragraphs(doc)):
                    yield {"text": p, "domain": "python_docstrings", "source_path": f"{qual}.__doc__#{i}",
                           "topic": f"the Python module {name}"}


def debian_docs():
    files = sorted(glob.glob("/usr/share/doc/*/README*") + glob.glob("/usr/share/doc/*/FAQ*")
                   + glob.glob("/usr/share/doc/*/*.txt*"))
    for path in files:
        try:
            raw = gzip.open(path).read() if path.endswith(".gz") else open(path, "rb").read()
            text = raw.decode("utf-8")
        except (OSError, UnicodeDecodeError, EOFError):
            continue
        pkg = path.split("/")[4]
        for i, p in enumerate(paragraphs(text)):
            yield {"text": p, "domain": "debian_docs", "source_path": f"{path}#{i}",
                   "topic": f"the software package {pkg}"}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--labeled", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--per-domain", type=int, default=300)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)

    key = lambda r: hashlib.sha256(r["source_path"].encode()).hexdigest()  # noqa: E731
    human, topics = [], []
    for gen in (pydoc_topics, stdlib_docstrings, debian_docs):
        rows = sorted(gen(), key=key)
        seen_topics: set[str] = set()
        picked = []
        for r in rows:  # at most 3 paragraphs per topic: breadth over depth
            n = sum(1 for p in picked if p["topic"] == r["topic"])
            if n < 3:
                picked.append(r)
            if len(picked) >= args.per_domain:
                break
        for r in picked:
            r["id"] = f"{r['domain']}-{key(r)[:12]}"
            r["label"], r["generator"] = "human", None
            human.append(r)
            if r["topic"] not in seen_topics:
                seen_topics.add(r["topic"])
                topics.append({"topic": r["topic"], "domain": r["domain"]})
    for r in (json.loads(x) for x in open(args.labeled, encoding="utf-8")):
        if r["label"] == "human":
            words = r["text"].split()[:14]
            topics.append({"topic": " ".join(words).rstrip(",;:") + "...", "domain": r["domain"]})
    with open(os.path.join(args.out, "human-extra.jsonl"), "w", encoding="utf-8") as f:
        for r in human:
            f.write(json.dumps({k: r[k] for k in ("id", "text", "label", "generator", "domain", "source_path")}) + "\n")
    with open(os.path.join(args.out, "topics.jsonl"), "w", encoding="utf-8") as f:
        for t in sorted(topics, key=lambda t: hashlib.sha256(t["topic"].encode()).hexdigest()):
            f.write(json.dumps(t) + "\n")
    counts: dict[str, int] = {}
    for r in human:
        counts[r["domain"]] = counts.get(r["domain"], 0) + 1
    print("human extra:", counts, "topics:", len(topics))


if __name__ == "__main__":
    main()
