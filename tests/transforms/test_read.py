import gzip
import io
import json

import pytest
import zstandard

from collapseguard.pipeline.config import ReadConfig
from collapseguard.transforms.read import InputError, Shard, expand_inputs, iter_lines, iter_shard


def _write(path, data: bytes):
    with open(path, "wb") as f:
        f.write(data)


def _records(lines):
    return b"".join(json.dumps({"id": f"r{i}", "text": t}).encode() + b"\n" for i, t in enumerate(lines))


def collect(shard, cfg=ReadConfig(chunk_bytes=64)):
    out = {"record": [], "rejected": [], "status": []}
    for kind, v in iter_shard(shard, cfg):
        out[kind].append(v)
    assert len(out["status"]) == 1
    return out


@pytest.mark.parametrize("suffix", ["jsonl", "jsonl.gz", "jsonl.zst", "parquet"])
def test_every_format_reads_the_same_records(tmp_path, suffix):
    texts = ["alpha beta", "gamma delta", "epsilon"]
    path = tmp_path / f"s.{suffix}"
    raw = _records(texts)
    if suffix == "jsonl":
        _write(path, raw)
    elif suffix == "jsonl.gz":
        _write(path, gzip.compress(raw))
    elif suffix == "jsonl.zst":
        _write(path, zstandard.ZstdCompressor().compress(raw))
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist([json.loads(x) for x in raw.splitlines()]), path)
    out = collect(Shard(str(path), path.name, 0))
    assert [r["text"] for r in out["record"]] == texts
    assert [r["line"] for r in out["record"]] == [1, 2, 3]
    assert out["status"][0]["records_read"] == 3 and out["status"][0]["error"] is None


def test_truncated_gzip_keeps_prefix_and_reports(tmp_path):
    raw = _records([f"record {i} " * 30 for i in range(300)])
    blob = gzip.compress(raw)
    path = tmp_path / "t.jsonl.gz"
    _write(path, blob[: len(blob) // 2])
    out = collect(Shard(str(path), "t.jsonl.gz", 0), ReadConfig(chunk_bytes=4096))
    st = out["status"][0]
    assert st["error"] and "EOFError" in st["error"]
    assert len(out["record"]) > 50
    assert [r["line"] for r in out["record"]] == list(range(1, len(out["record"]) + 1))
    assert [x["reason"] for x in out["rejected"]] in ([], ["truncated_shard"])
    assert st["records_read"] == len(out["record"]) + len(out["rejected"])


def test_corrupt_parquet_is_reported_not_raised(tmp_path):
    path = tmp_path / "bad.parquet"
    _write(path, b"PAR1 this is not parquet")
    out = collect(Shard(str(path), "bad.parquet", 0))
    assert out["record"] == [] and out["status"][0]["error"]


def test_iter_lines_handles_long_lines_and_missing_final_newline():
    data = b"a" * 1000 + b"\nb\n\nlast"
    assert list(iter_lines(io.BytesIO(data), 7)) == [(1, b"a" * 1000), (2, b"b"), (3, b""), (4, b"last")]


def test_expand_inputs_sorts_dedups_and_names_relative(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    for p in ("a/x.jsonl", "a/y.jsonl", "b/x.jsonl"):
        _write(tmp_path / p, b"")
    shards = expand_inputs([f"{tmp_path}/*/*.jsonl", f"{tmp_path}/a/x.jsonl"])
    assert [s.name for s in shards] == ["a/x.jsonl", "a/y.jsonl", "b/x.jsonl"]
    assert [s.index for s in shards] == [0, 1, 2]
    assert len({s.key for s in shards}) == 3
    assert all("/" not in s.key for s in shards)


def test_expand_inputs_fails_fast_on_no_match(tmp_path):
    with pytest.raises(InputError, match="matched no files"):
        expand_inputs([f"{tmp_path}/nothing-*.jsonl"])


def test_memory_filesystem_inputs():
    import fsspec

    fs = fsspec.filesystem("memory")
    with fs.open("/cg-read-test/s.jsonl", "wb") as f:
        f.write(_records(["in memory"]))
    shards = expand_inputs(["memory://cg-read-test/*.jsonl"])
    assert shards[0].url.startswith("memory://") and shards[0].name == "s.jsonl"
    assert collect(shards[0])["record"][0]["text"] == "in memory"


def test_progress_reports_rate_and_eta():
    from collapseguard.transforms.read import Progress

    t = [0.0]
    p = Progress(total_bytes=1000, every_s=5.0, clock=lambda: t[0])
    t[0] = 1.0
    assert p.add(100, 10, 1000) is None  # under the reporting interval
    t[0] = 10.0
    line = p.add(400, 40, 4000)
    assert "50.0% of 0.0 MB" in line and "5 docs/s" in line and "500 words/s" in line and "ETA 0:00:10" in line
    t[0] = 11.0
    assert "100.0%" in p.add(500, 5, 10)  # the last shard always reports


def test_expand_inputs_records_sizes(tmp_path):
    _write(tmp_path / "a.jsonl", b"x" * 123)
    assert expand_inputs([f"{tmp_path}/*.jsonl"])[0].size == 123
