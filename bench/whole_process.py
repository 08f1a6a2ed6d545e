"""Whole-process throughput of the non-LM path, start-up included, as a new user meets it.

    python bench/whole_process.py [--docs 8000] [--shards 8] [--baseline-python PATH]

Generates N documents of 100-300 words (bench/throughput.py's generator) in `--shards` JSONL
shards, and times, each in a fresh process: a one-document run (the fixed start-up), and the
whole corpus with `collapseguard run --scoring-model none` (DirectRunner defaults). The same
two runs of Beam's thinnest pipeline over the same shards (read -> json.loads -> Parquet) are
the baseline measured in the same run; `--baseline-python` also times another installation's
`collapseguard` (e.g. an earlier commit's venv) on the same corpus.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from throughput import kernel_state  # noqa: E402 - bench scripts run from a checkout

FLOOR = """
import json, os, sys
import apache_beam as beam, pyarrow as pa
schema = pa.schema([("id", pa.string()), ("text", pa.string()), ("source", pa.string()), ("timestamp", pa.string())])
with beam.Pipeline() as p:
    (p | beam.io.ReadFromText(sys.argv[1]) | beam.Map(json.loads)
       | beam.io.WriteToParquet(os.path.join(sys.argv[2], "part"), schema, file_name_suffix=".parquet"))
"""


def make_corpus(folder: str, n_docs: int, n_shards: int, seed: int = 0) -> None:
    import wordfreq

    rng = random.Random(seed)
    vocab = wordfreq.top_n_list("en", 20_000)
    words = rng.choices(vocab, [1.0 / (i + 1) for i in range(len(vocab))], k=400_000)
    files = [open(os.path.join(folder, f"shard-{i:04d}.jsonl"), "w", encoding="utf-8") for i in range(n_shards)]
    for d in range(n_docs):
        start = rng.randint(0, len(words) - 400)
        text = " ".join(words[start:start + rng.randint(100, 300)])
        rec = {"id": f"doc-{d:07d}", "text": text[:1].upper() + text[1:] + ".", "source": rng.choice(["web", "news"]),
               "timestamp": f"20{rng.randint(10, 25)}-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}"}
        files[d % n_shards].write(json.dumps(rec) + "\n")
    for f in files:
        f.close()


def timed(cmd: list[str]) -> float:
    t = time.perf_counter()
    r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if r.returncode not in (0, 3):
        raise SystemExit(f"{cmd[0]} failed ({r.returncode}): {r.stderr[-2000:]}")
    return time.perf_counter() - t


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=8000)
    ap.add_argument("--shards", type=int, default=8)
    ap.add_argument("--baseline-python", help="another installation's python (its collapseguard is timed too)")
    args = ap.parse_args(argv)
    work = tempfile.mkdtemp(prefix="cg-whole-")
    try:
        corpus, one = os.path.join(work, "corpus"), os.path.join(work, "one")
        os.makedirs(corpus)
        os.makedirs(one)
        make_corpus(corpus, args.docs, args.shards)
        make_corpus(one, 1, 1)
        pattern = os.path.join(corpus, "*.jsonl")
        runs = {"beam floor (read -> json -> Parquet)": [sys.executable, "-c", FLOOR],
                "collapseguard --scoring-model none": [os.path.join(os.path.dirname(sys.executable), "collapseguard"), "run"]}
        if args.baseline_python:
            runs["baseline collapseguard"] = [os.path.join(os.path.dirname(args.baseline_python), "collapseguard"), "run"]
        results = {}
        for i, (label, cmd) in enumerate(runs.items()):
            def argv_for(pat, out):
                if "-c" in cmd:
                    return cmd + [pat, out]
                return cmd + ["--input", pat, "--output", out, "--scoring-model", "none"]
            start = timed(argv_for(os.path.join(one, "*.jsonl"), os.path.join(work, f"o1-{i}")))
            total = timed(argv_for(pattern, os.path.join(work, f"on-{i}")))
            results[label] = (start, total)
            print(f"{label:40s} one document {start:5.1f} s; {args.docs} documents {total:6.1f} s: "
                  f"{args.docs / total:6.0f} docs/s whole process", flush=True)
        ours = results["collapseguard --scoring-model none"]
        floor = results["beam floor (read -> json -> Parquet)"]
        print(f"text kernel: {kernel_state()}")
        print(f"ratio ours / floor, whole process: {floor[1] / ours[1]:.2f}")
        if args.baseline_python:
            base = results["baseline collapseguard"]
            print(f"ratio ours / baseline, whole process: {base[1] / ours[1]:.2f}  (target >= 2)")
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
