"""Peak memory of one big shard against the same records spread over many shards, in one run.

    python bench/memory.py [--docs 200000] [--shards 30] [--beam-args "..."]

Generates N short records (20-60 words each), writes them once as one JSONL shard and once
spread over `--shards` shards, and runs `collapseguard run --scoring-model none` on each in its
own process. Prints each run's peak RSS (the process's maximum resident set, from
getrusage of a child that did nothing else) and the ratio one-shard / many-shards (target
<= 1.2: a worker's memory must follow the config's chunk size, not the size of a shard).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

WORDS = ("time year people way day man thing woman life child world school state family student group "
         "country problem hand part place case week company system program question work government number "
         "night point home water room mother area money story fact month lot right study book eye job word "
         "business issue side kind head house service friend father power hour game line end member law car "
         "city community name president team minute idea kid body information back parent face others level "
         "office door health person art war history party result change morning reason research girl guy "
         "moment air teacher force education").split()


def make_corpus(folder: str, n_docs: int, n_shards: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    files = [open(os.path.join(folder, f"part-{i:04d}.jsonl"), "w", encoding="utf-8") for i in range(n_shards)]
    for d in range(n_docs):
        text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(20, 60)))
        files[d % n_shards].write(json.dumps({"id": f"r{d:08d}", "text": text, "source": "web"}) + "\n")
    for f in files:
        f.close()


def peak_rss_mb(cmd: list[str]) -> tuple[float, float]:
    """(peak RSS of `cmd` in MB, wall seconds), measured from a fresh wrapper process so that no
    earlier child's maximum counts."""
    probe = ("import resource, subprocess, sys, time; t = time.perf_counter(); "
             "r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True); "
             "sys.stderr.write(r.stderr[-2000:] if r.returncode else ''); "
             "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, time.perf_counter() - t, r.returncode)")
    out = subprocess.run([sys.executable, "-c", probe, *cmd], capture_output=True, text=True, check=True)
    kb, secs, rc = out.stdout.split()
    if rc != "0":
        raise SystemExit(f"run failed ({rc}): {out.stderr}")
    return int(kb) / 1024, float(secs)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=200_000)
    ap.add_argument("--shards", type=int, default=30)
    ap.add_argument("--beam-args", default="", help="runner flags for both runs")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args(argv)
    cli = os.path.join(os.path.dirname(sys.executable), "collapseguard")
    work = tempfile.mkdtemp(prefix="cg-mem-")
    try:
        results = {}
        for label, n_shards in (("many", args.shards), ("one", 1)):
            corpus = os.path.join(work, f"corpus-{label}")
            os.makedirs(corpus)
            make_corpus(corpus, args.docs, n_shards)
            cmd = [cli, "run", "--input", os.path.join(corpus, "*.jsonl"), "--output", os.path.join(work, f"out-{label}"),
                   "--scoring-model", "none", *shlex.split(args.beam_args)]
            t = time.perf_counter()
            results[label] = peak_rss_mb(cmd)
            print(f"{args.docs} records in {n_shards:3d} shard(s): peak RSS {results[label][0]:7.0f} MB "
                  f"({time.perf_counter() - t:.0f} s)", flush=True)
        ratio = results["one"][0] / results["many"][0]
        print(f"runner flags: {args.beam_args or '(DirectRunner defaults)'}")
        print(f"ratio one shard / {args.shards} shards: {ratio:.2f}  (target <= 1.2)")
        return 0
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
