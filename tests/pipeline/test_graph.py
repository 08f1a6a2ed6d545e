"""The whole graph end to end, on real Beam runners, with hostile input."""

import glob
import hashlib
import json
import os

import pyarrow.parquet as pq
from apache_beam.testing.test_pipeline import TestPipeline

from collapseguard.pipeline import config as config_mod
from collapseguard.pipeline.cli import run
from collapseguard.pipeline.graph import build
from collapseguard.core.schema import ALL_OUTPUTS, OUTPUT_SCHEMA
from collapseguard.transforms.read import expand_inputs


def read_outputs(out):
    rows = {}
    for name in ALL_OUTPUTS:
        for f in sorted(glob.glob(os.path.join(out, name, "*.parquet"))):
            t = pq.read_table(f)
            assert t.schema.equals(OUTPUT_SCHEMA, check_metadata=False)
            for r in t.to_pylist():
                assert r["stratum"] == name
                rows.setdefault(r["id"], []).append(r)
    rejected = []
    for f in sorted(glob.glob(os.path.join(out, "rejected", "*.jsonl"))):
        rejected += [json.loads(x) for x in open(f, encoding="utf-8")]
    return rows, rejected


def tree_digest(out, with_manifest=True):
    h = {}
    for f in sorted(glob.glob(os.path.join(out, "**", "*"), recursive=True)):
        if os.path.isfile(f) and (with_manifest or not f.endswith("manifest.json")):
            h[os.path.relpath(f, out)] = hashlib.sha256(open(f, "rb").read()).hexdigest()
    return h


def test_hostile_input_every_record_lands_exactly_once(hostile_dir, tmp_path):
    folder, expect = hostile_dir
    out = str(tmp_path / "out")
    cfg = config_mod.from_dict({})
    with TestPipeline() as p:
        build(p, cfg, expand_inputs([f"{folder}/*"]), out, {"inputs": [folder]})
    rows, rejected = read_outputs(out)
    assert sorted(rows) == expect["valid_ids"]
    assert all(len(v) == 1 for v in rows.values())
    assert sorted(r["reason"] for r in rejected) == expect["rejected_reasons"]
    assert all(r["raw"] is not None and r["shard"] and r["line"] >= 1 for r in rejected)

    m = json.load(open(os.path.join(out, "manifest.json")))
    assert m["conserved"] is True
    assert m["records_read"] == len(expect["valid_ids"]) + len(expect["rejected_reasons"])
    assert m["records_rejected"] == len(rejected)
    by_shard = {s["shard"]: s for s in m["shards"]}
    assert by_shard["empty.jsonl"]["records_read"] == 0
    assert "EOFError" in by_shard["truncated.jsonl.gz"]["error"]
    assert m["shards_with_errors"] == [{"shard": "truncated.jsonl.gz", "error": by_shard["truncated.jsonl.gz"]["error"]}]

    huge = rows["huge-30mb"][0]
    assert huge["n_chars"] == 30_000_000 and len(huge["text"]) == 30_000_000
    assert rows["script"][0]["text"].startswith("<script>")
    assert rows["12345"][0]["timestamp"] is not None
    assert rows["bad-ts"][0]["input_warnings"] == ["timestamp_unparsed"]
    assert rows["bom-1"][0]["lang"] == "en"


def test_duplicate_ids_can_be_kept_with_a_flag(hostile_dir, tmp_path):
    folder, expect = hostile_dir
    out = str(tmp_path / "out")
    cfg = config_mod.from_dict({"read": {"duplicate_ids": "keep"}})
    with TestPipeline() as p:
        build(p, cfg, expand_inputs([f"{folder}/mixed.jsonl"]), out, {})
    rows, rejected = read_outputs(out)
    assert [r["is_duplicate_id"] for r in sorted(rows["ok-1"], key=lambda r: r["line"])] == [False, True]
    assert "duplicate_id" not in {r["reason"] for r in rejected}


def test_low_entropy_shard_goes_to_review_with_floor_in_manifest(tmp_path):
    from fixtures_data import HUMAN

    src = tmp_path / "in"
    src.mkdir()
    with open(src / "human.jsonl", "w") as f:
        for i in range(40):
            f.write(json.dumps({"id": f"h{i}", "text": HUMAN[i % 2] + " " + HUMAN[1 - i % 2] + f" Item {i}.", "source": "arxiv"}) + "\n")
    with open(src / "spam.jsonl", "w") as f:
        for i in range(10):
            f.write(json.dumps({"id": f"s{i}", "text": "buy cheap shoes now " * 40, "source": "seo"}) + "\n")
    out = str(tmp_path / "out")
    cfg = config_mod.from_dict({"provenance": {"verified_sources": ["arxiv"]},
                                "entropy": {"min_calibration_windows": 20, "quantile": 0.05}})
    with TestPipeline() as p:
        build(p, cfg, expand_inputs([f"{src}/*.jsonl"]), out, {})
    rows, _ = read_outputs(out)
    m = json.load(open(os.path.join(out, "manifest.json")))
    assert m["entropy"]["floor_source"] == "calibrated" and 5.0 < m["entropy"]["floor_bits"] < 7.0
    assert m["shards_held_for_review"] == ["spam.jsonl"]
    assert {r[0]["stratum"] for k, r in rows.items() if k.startswith("s")} == {"review"}
    assert {r[0]["stratum"] for k, r in rows.items() if k.startswith("h")} <= {"anchor", "human_verified"}
    assert rows["s0"][0]["hold_reasons"][1] == "would_be:human_unverified"


def test_rerun_is_byte_identical_and_multiprocessing_gives_same_data(tmp_path, sample_shards):
    base = ["--input", sample_shards, "--scoring-model", "none",
            "--config", os.path.join(os.path.dirname(sample_shards), "..", "config.yaml")]
    a, b, c = (str(tmp_path / x) for x in "abc")
    run(base + ["--output", a])
    run(base + ["--output", b])
    run(base + ["--output", c, "--direct_running_mode=multi_processing", "--direct_num_workers=2"])
    assert tree_digest(a) == tree_digest(b)
    assert tree_digest(a) == tree_digest(c)
    m = json.load(open(os.path.join(a, "manifest.json")))
    assert m["conserved"] and m["records_by_stratum"]["review"] > 0 and m["records_by_stratum"]["anchor"] > 0


def test_sample_run_writes_report_mixture_and_weights(tmp_path, sample_shards):
    out = str(tmp_path / "out")
    run(["--output", out, "--scoring-model", "none"])
    mixture = json.load(open(os.path.join(out, "mixture.json")))
    assert mixture["under_ceiling"] and mixture["synthetic_share"] <= mixture["ceiling"]
    assert mixture["synthetic_tokens"] > 0 and 0 < mixture["synthetic_weight"] < 1
    rows, _ = read_outputs(out)
    weights = {r[0]["stratum"]: [] for r in rows.values()}
    for r in rows.values():
        weights[r[0]["stratum"]].append(r[0]["sample_weight"])
    assert set(weights["anchor"]) == {0.0} and set(weights["review"]) == {0.0}
    assert all(1.0 <= w <= 4.0 for w in weights["human_verified"] + weights["human_unverified"])
    assert max(weights["human_verified"]) > 1.0  # rare-word-rich documents are up-weighted
    assert set(weights["synthetic_known"]) == {mixture["synthetic_weight"]}
    html = open(os.path.join(out, "report.html"), encoding="utf-8").read()
    assert html.count("<svg") >= 4 and "<script" not in html
    m = json.load(open(os.path.join(out, "manifest.json")))
    assert set(m["diversity"]) >= {"human_verified", "synthetic_known"}
    assert 0 < m["diversity"]["human_verified"]["distinct_2"] <= 1


def test_no_grouped_element_holds_more_than_a_chunk(hostile_dir, tmp_path):
    """A shard of three times the chunk size is planned and written as three chunks, a 30 MB
    document is a chunk of its own, and the manifest and the Beam Distribution metric both say
    the largest grouped element held no more than the bound."""
    from apache_beam.metrics.metric import MetricsFilter

    folder, _ = hostile_dir
    big = tmp_path / "in" / "big.jsonl"
    big.parent.mkdir()
    words = "the quick brown fox jumps over the lazy dog and then some more words follow here".split()
    with open(big, "w", encoding="utf-8") as f:
        for i in range(60):
            f.write(json.dumps({"id": f"b{i}", "text": " ".join(words[(i + j) % len(words)] for j in range(150))}) + "\n")
        f.write("{not json\n")
    os.symlink(os.path.join(folder, "huge.jsonl"), tmp_path / "in" / "huge.jsonl")
    out = str(tmp_path / "out")
    cfg = config_mod.from_dict({"read": {"chunk_documents": 20, "chunk_text_bytes": 1 << 20}})
    p = TestPipeline()
    build(p, cfg, expand_inputs([str(tmp_path / "in" / "*.jsonl")]), out, {})
    result = p.run()
    result.wait_until_finish()

    m = json.load(open(os.path.join(out, "manifest.json")))
    shards = {s["shard"]: s for s in m["shards"]}
    assert m["conserved"] and shards["big.jsonl"]["chunks"] == 4 and shards["big.jsonl"]["records_read"] == 61
    assert shards["big.jsonl"]["max_chunk_documents"] == 20
    huge = shards["huge.jsonl"]
    assert huge["max_chunk_documents"] == 1 and huge["max_chunk_text_bytes"] >= 30_000_000
    assert m["largest_element"]["documents"] == 20
    assert m["largest_element"]["text_bytes"] == huge["max_chunk_text_bytes"]
    assert m["chunks_total"] == sum(s["chunks"] for s in m["shards"])
    written = sorted(os.path.basename(f) for f in glob.glob(os.path.join(out, "*", "*.parquet")))
    big_key = expand_inputs([str(big)])[0].key
    assert {f"{big_key}.00000.0000{i}.parquet" for i in range(3)} <= set(written)
    assert sorted(os.path.basename(f) for f in glob.glob(os.path.join(out, "rejected", "*"))) == [f"{big_key}.00000.00003.jsonl"]
    dist = result.metrics().query(MetricsFilter().with_name("chunk_documents"))["distributions"]
    assert dist and max(d.committed.max for d in dist) == 20
    assert sum(d.committed.sum for d in dist) == m["records_read"]


def _downstream(components, start: str) -> set[str]:
    """PCollection ids computed (through any chain of steps) from PCollection `start`."""
    leaves = [t for t in components.transforms.values() if not t.subtransforms]
    seen, frontier = {start}, [start]
    while frontier:
        pc = frontier.pop()
        for t in leaves:
            if pc in t.inputs.values():
                for out in t.outputs.values():
                    if out not in seen:
                        seen.add(out)
                        frontier.append(out)
    return seen


def test_texts_cross_between_workers_once(sample_shards, tmp_path):
    """After the one grouping of texts (GroupByChunk) no step on the texts' path waits for a side
    input computed from that grouping's own output: the runner can fuse the finalize and the write
    with the grouping's read, so a chunk's texts are never materialised a second time. (The shard
    audit and the run's weighting come from the chunks' summaries, grouped apart from the texts.)"""
    import apache_beam as beam
    from apache_beam.portability.api import beam_runner_api_pb2

    p = beam.Pipeline()
    build(p, config_mod.Config(), expand_inputs([sample_shards]), str(tmp_path / "out"), {})
    components = p.to_runner_api().components
    leaves = [t for t in components.transforms.values() if not t.subtransforms]

    def step(name):  # the primitive transform of the graph's step `name`
        (t,) = [t for t in leaves if name in t.unique_name.split("/")]
        return t

    def side_and_main(t):
        payload = beam_runner_api_pb2.ParDoPayload.FromString(t.spec.payload)
        side = {t.inputs[local] for local in payload.side_inputs}
        return side, set(t.inputs.values()) - side

    grouping = step("GroupByChunk")
    grouped = _downstream(components, next(iter(grouping.outputs.values())))
    previous = grouping
    for name in ("FinalizeChunks", "WriteChunks"):  # the texts' path after the grouping
        t = step(name)
        side, main = side_and_main(t)
        assert main <= set(previous.outputs.values()), name
        assert side, name  # the check below means something: these steps take side inputs
        assert not side & grouped, f"{name} waits on a side input computed after GroupByChunk"
        previous = t
