"""Throughput of the non-LM path against the floor of Beam's own overhead, in one run.

    python bench/throughput.py [--docs 20000] [--shards 40] [--beam-args "--direct_num_workers=2 ..."]

1. Generates a corpus: N documents of 100-1,500 words (Zipf-distributed English vocabulary from
   wordfreq, sentences of varied length), spread over many JSONL shards.
2. Runs the thinnest possible Beam pipeline over the same shards (read lines -> json.loads ->
   write Parquet): the floor of Beam's own per-record cost.
3. Runs collapseguard (`--scoring-model none`) over the same shards with the same runner flags.
Prints docs/s for both and the ratio (target: ours >= 25% of the floor). `--breakdown` also
times the floor with one GroupByKey of every record added (what a shuffle costs Beam here) and
our two per-document scorers alone, in-process without Beam (what the stage computes).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shlex
import shutil
import sys
import tempfile
import time


def make_corpus(folder: str, n_docs: int, n_shards: int, seed: int = 0) -> int:
    import wordfreq

    rng = random.Random(seed)
    vocab = wordfreq.top_n_list("en", 20_000)
    weights = [1.0 / (i + 1) for i in range(len(vocab))]  # Zipf's law
    words = rng.choices(vocab, weights, k=400_000)
    total_bytes = 0
    files = [open(os.path.join(folder, f"shard-{i:04d}.jsonl"), "w", encoding="utf-8") for i in range(n_shards)]
    pos = 0
    for d in range(n_docs):
        n = rng.randint(100, 1500)
        sents, left = [], n
        while left > 0:
            k = min(left, rng.randint(4, 30))
            if pos + k > len(words):
                pos = rng.randint(0, 1000)
            s = " ".join(words[pos : pos + k])
            pos += k
            sents.append(s[:1].upper() + s[1:] + rng.choice(".!?."))
            left -= k
        rec = {"id": f"doc-{d:07d}", "text": " ".join(sents), "source": rng.choice(["web", "news", "forum"]),
               "timestamp": f"20{rng.randint(10, 25)}-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}"}
        line = json.dumps(rec) + "\n"
        total_bytes += len(line)
        files[d % n_shards].write(line)
    for f in files:
        f.close()
    return total_bytes


def kernel_state() -> str:
    """Which path computed the cheap signals: the compiled kernel or pure Python (identical
    results; the kernel is built by `make install` where a C compiler is)."""
    from collapseguard.core import text

    return "compiled (core/_textkernel.c)" if text.kernel is not None else "pure Python (no compiled kernel here)"


def run_floor(pattern: str, out: str, beam_args: list[str], shuffle: bool = False) -> None:
    """The floor pipeline; with `shuffle`, the parsed records also go through one GroupByKey
    (40 keys by a hash of the id), as ours moves each record through one grouping."""
    import apache_beam as beam
    import pyarrow as pa
    from apache_beam.options.pipeline_options import PipelineOptions

    schema = pa.schema([("id", pa.string()), ("text", pa.string()), ("source", pa.string()),
                        ("timestamp", pa.string())])
    with beam.Pipeline(options=PipelineOptions(beam_args)) as p:
        records = p | "Read" >> beam.io.ReadFromText(pattern) | "Parse" >> beam.Map(json.loads)
        if shuffle:
            records = (records
                       | "Key" >> beam.Map(lambda r: (int(hashlib.sha1(r["id"].encode()).hexdigest()[:8], 16) % 40, r))
                       | "Group" >> beam.GroupByKey()
                       | "Ungroup" >> beam.FlatMap(lambda kv: kv[1]))
        records | "Write" >> beam.io.WriteToParquet(os.path.join(out, "part"), schema, file_name_suffix=".parquet")


def time_scoring(pattern: str) -> dict[str, float]:
    """Seconds of the two per-document scorers alone, in this process without Beam, on the
    corpus: the cheap signals with language id, and the detector (classifier + calibration)."""
    import glob

    from collapseguard.models.classifier import Classifier
    from collapseguard.models.detector import Detector
    from collapseguard.pipeline.options import DETECTOR_DEFAULT, detector_paths
    from collapseguard.transforms.detect import score_batch
    from collapseguard.transforms.signals import CheapSignals, SignalsConfig

    records = [json.loads(line) for f in sorted(glob.glob(pattern)) for line in open(f, encoding="utf-8")]
    signals = CheapSignals(SignalsConfig())
    classifier_path, calibration_path = detector_paths(DETECTOR_DEFAULT)
    det = Detector.load(calibration_path)
    clf = Classifier(classifier_path, view=det.classifier_view)
    out = {}
    t = time.perf_counter()
    for i in range(0, len(records), 256):
        signals.score(records[i:i + 256])
    out["cheap signals + language id"] = time.perf_counter() - t
    t = time.perf_counter()
    for i in range(0, len(records), 256):
        score_batch(records[i:i + 256], clf, det)
    out["detector"] = time.perf_counter() - t
    return out


def run_ours(pattern: str, out: str, beam_args: list[str]) -> dict:
    from collapseguard.pipeline.cli import run

    return run(["--input", pattern, "--output", out, "--scoring-model", "none"] + beam_args)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=20_000)
    ap.add_argument("--shards", type=int, default=40)
    ap.add_argument("--beam-args", default="", help="runner flags for both pipelines")
    ap.add_argument("--keep", action="store_true", help="keep the generated corpus and outputs")
    ap.add_argument("--breakdown", action="store_true",
                    help="also time the floor with one GroupByKey added, and our two per-document "
                         "scorers alone in this process (no Beam)")
    args = ap.parse_args(argv)
    beam_args = shlex.split(args.beam_args)

    work = tempfile.mkdtemp(prefix="cg-bench-")
    try:
        corpus = os.path.join(work, "corpus")
        os.makedirs(corpus)
        t = time.perf_counter()
        nbytes = make_corpus(corpus, args.docs, args.shards)
        print(f"corpus: {args.docs} docs, {args.shards} shards, {nbytes / 1e6:.1f} MB "
              f"(generated in {time.perf_counter() - t:.1f} s)")
        pattern = os.path.join(corpus, "*.jsonl")

        t = time.perf_counter()
        run_floor(pattern, os.path.join(work, "floor"), beam_args)
        floor_s = time.perf_counter() - t

        t = time.perf_counter()
        manifest = run_ours(pattern, os.path.join(work, "ours"), beam_args)
        ours_s = time.perf_counter() - t
        assert manifest["conserved"] and manifest["records_read"] == args.docs

        floor_rate, ours_rate = args.docs / floor_s, args.docs / ours_s
        print(f"runner flags: {beam_args or '(DirectRunner defaults)'}")
        print(f"text kernel: {kernel_state()}")
        print(f"floor (read -> json.loads -> Parquet): {floor_rate:8.0f} docs/s  ({floor_s:.1f} s)")
        print(f"collapseguard --scoring-model none:    {ours_rate:8.0f} docs/s  ({ours_s:.1f} s)")
        print(f"ratio ours/floor: {ours_rate / floor_rate:.2f}  (target >= 0.25)")
        if args.breakdown:
            t = time.perf_counter()
            run_floor(pattern, os.path.join(work, "floor-shuffled"), beam_args, shuffle=True)
            print(f"floor + one GroupByKey of every record:  {time.perf_counter() - t:.1f} s (floor {floor_s:.1f} s)")
            for what, secs in time_scoring(pattern).items():
                print(f"in-process, no Beam: {what}: {secs:.2f} s")
        return 0
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
