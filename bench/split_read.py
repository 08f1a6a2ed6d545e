"""One big shard against the same documents in many shards, in one run: is a big shard one
worker's job?

    python bench/split_read.py [--docs 20000] [--shards 40] [--workers 2]

Generates one corpus (bench/throughput.py's generator), writes it once as a single uncompressed
JSONL shard and once as `--shards` shards, and runs `collapseguard run --scoring-model none`
on each under DirectRunner multi_processing with `--workers` processes. The big shard is read in
parts (`read.split_bytes` set to an eighth of it, so it splits here as a multi-GB shard would
at the default 64 MiB). Prints docs/s of both and the ratio one-shard / many-shards (near 1:
the big shard's reading and scoring are spread over the workers; near 1/workers: serialised).
Also runs the big shard unsplit (split_bytes above its size) for comparison.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from throughput import make_corpus  # noqa: E402 - bench scripts run from a checkout


def run(pattern: str, out: str, split_bytes: int, workers: int) -> tuple[float, dict]:
    from collapseguard.pipeline.cli import run as cg_run

    cfg = out + ".yaml"
    with open(cfg, "w") as f:
        f.write(f"read: {{split_bytes: {split_bytes}}}\n")
    t = time.perf_counter()
    manifest = cg_run(["--input", pattern, "--output", out, "--scoring-model", "none", "--config", cfg,
                       "--direct_running_mode=multi_processing", f"--direct_num_workers={workers}"])
    return time.perf_counter() - t, manifest


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=20_000)
    ap.add_argument("--shards", type=int, default=40)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args(argv)
    work = tempfile.mkdtemp(prefix="cg-split-")
    try:
        many = os.path.join(work, "many")
        os.makedirs(many)
        make_corpus(many, args.docs, args.shards)
        one = os.path.join(work, "one")
        os.makedirs(one)
        with open(os.path.join(one, "all.jsonl"), "wb") as dst:
            for name in sorted(os.listdir(many)):
                with open(os.path.join(many, name), "rb") as src:
                    shutil.copyfileobj(src, dst)
        size = os.path.getsize(os.path.join(one, "all.jsonl"))
        split = max(1 << 16, size // 8)
        results = {}
        for label, pattern, split_bytes in (("many shards", os.path.join(many, "*.jsonl"), split),
                                            ("one shard, split", os.path.join(one, "*.jsonl"), split),
                                            ("one shard, unsplit", os.path.join(one, "*.jsonl"), size + 1)):
            secs, m = run(pattern, os.path.join(work, "out-" + label.replace(" ", "").replace(",", "")),
                          split_bytes, args.workers)
            assert m["conserved"] and m["records_read"] == args.docs
            results[label] = args.docs / secs
            print(f"{label:20s} {m['shards_total']:3d} shard(s), {m['chunks_total']:4d} chunks: "
                  f"{results[label]:7.0f} docs/s ({secs:.1f} s)", flush=True)
        print(f"corpus {size / 1e6:.1f} MB, split_bytes {split}, {args.workers} workers (multi_processing)")
        print(f"ratio one shard split / many shards:   {results['one shard, split'] / results['many shards']:.2f}")
        print(f"ratio one shard unsplit / many shards: {results['one shard, unsplit'] / results['many shards']:.2f}")
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
