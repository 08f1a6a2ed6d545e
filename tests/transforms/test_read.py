import bz2
import gzip
import io
import json
import lzma
import os

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard
from fixtures_data import corrupt_parquet_row_group, garbage_parquet_footer, varied_jsonl

from collapseguard.pipeline.config import ReadConfig
from collapseguard.transforms.read import InputError, Part, Shard, expand_inputs, iter_lines, iter_shard


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



# --- corrupt input never vanishes quietly -------------------------------------------------

def _conserved(out) -> bool:
    st = out["status"][0]
    return (st["records_read"] == st["records_valid"] + st["records_rejected"]
            == len(out["record"]) + len(out["rejected"]))


def _zst(data: bytes, **kw) -> bytes:
    return zstandard.ZstdCompressor(**kw).compress(data)


@pytest.mark.parametrize("cut", ["header_only", "half", "last_byte_missing", "empty"])
def test_truncated_zst_keeps_prefix_and_reports(tmp_path, cut):
    raw = varied_jsonl(0, 2000)
    blob = _zst(raw)
    keep = {"header_only": 6, "half": len(blob) // 2, "last_byte_missing": len(blob) - 1, "empty": 0}[cut]
    path = tmp_path / "t.jsonl.zst"
    _write(path, blob[:keep])
    out = collect(Shard(str(path), "t.jsonl.zst", 0), ReadConfig(chunk_bytes=4096))
    st = out["status"][0]
    assert st["error"] and st["error"].startswith("EOFError")
    expected = [json.loads(x)["id"] for x in raw.splitlines()]
    ids = [r["id"] for r in out["record"]]
    assert ids == expected[: len(ids)] and len(ids) < len(expected)  # a clean prefix, never all
    if cut == "half":
        assert len(ids) > 500
    assert [r["line"] for r in out["record"]] == list(range(1, len(ids) + 1))
    assert [x["reason"] for x in out["rejected"]] in ([], ["truncated_shard"])
    assert _conserved(out)


def test_truncated_zst_rejects_the_partial_line_with_its_line_number(tmp_path):
    raw = varied_jsonl(0, 2000)
    blob = _zst(raw)
    path = tmp_path / "t.jsonl.zst"
    _write(path, blob[: len(blob) * 3 // 4])
    out = collect(Shard(str(path), "t.jsonl.zst", 0))
    (rej,) = out["rejected"]
    assert rej["reason"] == "truncated_shard" and rej["line"] == len(out["record"]) + 1
    assert raw.splitlines()[rej["line"] - 1].startswith(rej["raw"].encode())


def test_multi_frame_zst_reads_every_frame(tmp_path):
    path = tmp_path / "m.jsonl.zst"
    _write(path, b"".join(_zst(varied_jsonl(i * 300, (i + 1) * 300)) for i in range(4)))
    out = collect(Shard(str(path), "m.jsonl.zst", 0), ReadConfig())
    assert [r["id"] for r in out["record"]] == [f"r{i}" for i in range(1200)]
    assert out["status"][0]["error"] is None


def _flip(b: bytes, at: int, n: int = 8) -> bytes:
    return b[:at] + bytes(x ^ 0x5A for x in b[at:at + n]) + b[at + n:]


@pytest.mark.parametrize("damage", ["flipped_bytes", "flipped_bytes_checksummed", "garbage_between_frames",
                                    "nul_between_frames", "middle_frame_cut_short"])
def test_zst_with_corrupt_middle_keeps_frames_before_and_reports(tmp_path, damage):
    frames = [_zst(varied_jsonl(i * 500, (i + 1) * 500), write_checksum=damage.endswith("checksummed"))
              for i in range(4)]
    if damage.startswith("flipped_bytes"):
        frames[2] = _flip(frames[2], len(frames[2]) // 2)
    elif damage == "garbage_between_frames":
        frames.insert(2, b"GARBAGE!")
    elif damage == "nul_between_frames":
        frames.insert(2, b"\0" * 8)
    else:
        frames[1] = frames[1][: len(frames[1]) // 2]
    path = tmp_path / "c.jsonl.zst"
    _write(path, b"".join(frames))
    out = collect(Shard(str(path), "c.jsonl.zst", 0), ReadConfig())
    assert out["status"][0]["error"]
    whole_frames_before = 1 if damage == "middle_frame_cut_short" else 2
    assert [r["id"] for r in out["record"]][: whole_frames_before * 500] == [
        f"r{i}" for i in range(whole_frames_before * 500)]
    assert len(out["record"]) < 2000 and _conserved(out)


@pytest.mark.parametrize("suffix,compress", [
    ("jsonl.zst", _zst), ("jsonl.bz2", bz2.compress), ("jsonl.xz", lzma.compress), ("jsonl.gz", gzip.compress)])
def test_garbage_after_the_last_stream_is_reported(tmp_path, suffix, compress):
    # bz2 and xz readers used to stop at the first stream that did not decode, silently:
    # a damaged second stream (parallel compressors write many) lost its records unseen.
    raw = varied_jsonl(0, 300)
    path = tmp_path / f"g.{suffix}"
    _write(path, compress(raw) + compress(varied_jsonl(300, 600))[:-40][::-1])
    out = collect(Shard(str(path), path.name, 0), ReadConfig())
    assert out["status"][0]["error"]
    assert [r["id"] for r in out["record"]][:300] == [f"r{i}" for i in range(300)]
    assert _conserved(out)


@pytest.mark.parametrize("suffix,compress", [
    ("jsonl.bz2", bz2.compress), ("jsonl.xz", lzma.compress), ("jsonl.gz", gzip.compress)])
def test_truncated_bz2_xz_gz_are_reported(tmp_path, suffix, compress):
    blob = compress(varied_jsonl(0, 3000))
    path = tmp_path / f"t.{suffix}"
    _write(path, blob[: len(blob) // 2])
    out = collect(Shard(str(path), path.name, 0), ReadConfig())
    assert out["status"][0]["error"].startswith("EOFError")
    assert [x["reason"] for x in out["rejected"]] in ([], ["truncated_shard"]) and _conserved(out)


@pytest.mark.parametrize("suffix,compress,padding", [
    ("jsonl.bz2", bz2.compress, b""), ("jsonl.gz", gzip.compress, b""), ("jsonl.zst", _zst, b""),
    ("jsonl.xz", lzma.compress, b"\0" * 4),  # xz stream padding: lzma.LZMAFile stopped there, silently
])
def test_concatenated_and_padded_streams_read_whole(tmp_path, suffix, compress, padding):
    path = tmp_path / f"c.{suffix}"
    _write(path, compress(varied_jsonl(0, 100)) + padding + compress(varied_jsonl(100, 200)))
    out = collect(Shard(str(path), path.name, 0), ReadConfig())
    assert [r["id"] for r in out["record"]] == [f"r{i}" for i in range(200)]
    assert out["status"][0]["error"] is None


def _parquet(path, n_rows=300, row_group_size=100, **kw):
    rows = [json.loads(x) for x in varied_jsonl(0, n_rows).splitlines()]
    pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=row_group_size, **kw)


@pytest.mark.parametrize("how,write_kw", [("pages", {}), ("pages", {"compression": "none"}),
                                          ("flip", {"write_page_checksum": True, "compression": "none"})])
def test_parquet_corrupt_middle_row_group_keeps_the_others(tmp_path, how, write_kw):
    path = str(tmp_path / "rg.parquet")
    _parquet(path, **write_kw)
    corrupt_parquet_row_group(path, 1, how)
    out = collect(Shard(path, "rg.parquet", 0))
    st = out["status"][0]
    assert [r["id"] for r in out["record"]] == [f"r{i}" for i in [*range(100), *range(200, 300)]]
    assert [r["line"] for r in out["record"]] == [*range(1, 101), *range(201, 301)]
    assert [x["line"] for x in out["rejected"]] == list(range(101, 201))
    assert {x["reason"] for x in out["rejected"]} == {"unreadable_row_group"}
    assert all(x["raw"] == "" and "row group 1" in x["detail"] for x in out["rejected"])
    assert st["error"].startswith("unreadable_row_group: row group 1") and st["row_groups_failed"] == 1
    assert st["records_read"] == 300 and _conserved(out)


def test_parquet_two_bad_row_groups_keep_first_error_and_count_both(tmp_path):
    path = str(tmp_path / "rg.parquet")
    _parquet(path, n_rows=2500, row_group_size=1100)  # groups of 1100, 1100, 300: several batches each
    corrupt_parquet_row_group(path, 0)
    corrupt_parquet_row_group(path, 2)
    out = collect(Shard(path, "rg.parquet", 0))
    st = out["status"][0]
    assert [r["line"] for r in out["record"]] == list(range(1101, 2201))
    assert [r["id"] for r in out["record"]] == [f"r{i}" for i in range(1100, 2200)]
    assert [x["line"] for x in out["rejected"]] == [*range(1, 1101), *range(2201, 2501)]
    assert st["row_groups_failed"] == 2 and "row group 0" in st["error"] and _conserved(out)


@pytest.mark.parametrize("damage", ["garbage_footer", "cut_in_half", "magic_only"])
def test_parquet_unreadable_footer_reports_without_records(tmp_path, damage):
    path = str(tmp_path / "f.parquet")
    _parquet(path)
    if damage == "garbage_footer":
        garbage_parquet_footer(path)
    else:
        data = open(path, "rb").read()
        _write(path, data[: len(data) // 2] if damage == "cut_in_half" else b"PAR1PAR1")
    out = collect(Shard(path, "f.parquet", 0))
    assert out["record"] == [] and out["rejected"] == [] and out["status"][0]["error"]


def test_shard_gone_between_expansion_and_read_is_reported(tmp_path):
    _write(tmp_path / "s.jsonl", _records(["x"]))
    (shard,) = expand_inputs([f"{tmp_path}/*.jsonl"])
    os.remove(tmp_path / "s.jsonl")
    out = collect(shard)
    assert out["record"] == [] and out["status"][0]["error"].startswith("FileNotFoundError")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_permissions_are_reported(tmp_path):
    path = tmp_path / "s.jsonl"
    _write(path, _records(["x"]))
    path.chmod(0)
    out = collect(Shard(str(path), "s.jsonl", 0))
    assert out["record"] == [] and out["status"][0]["error"].startswith("PermissionError")


def test_permission_denied_on_open_is_reported(tmp_path, monkeypatch):
    def denied(*a, **k):
        raise PermissionError("403 Forbidden")

    monkeypatch.setattr(fsspec, "open", denied)  # what an object store answers without rights
    for name in ("s.jsonl", "s.jsonl.zst", "s.parquet"):
        out = collect(Shard(str(tmp_path / name), name, 0))
        assert out["record"] == [] and out["status"][0]["error"] == "PermissionError: 403 Forbidden"


def test_shard_that_is_a_folder_is_reported(tmp_path):
    out = collect(Shard(str(tmp_path), "dir.jsonl", 0))
    assert out["record"] == [] and out["status"][0]["error"]


@pytest.mark.parametrize("suffix", ["jsonl.gz", "jsonl.zst", "jsonl.bz2", "jsonl.xz"])
def test_plain_text_named_as_compressed_is_reported(tmp_path, suffix):
    path = tmp_path / f"p.{suffix}"
    _write(path, _records(["plain text, not compressed"]))
    out = collect(Shard(str(path), path.name, 0))
    assert out["record"] == [] and out["status"][0]["error"] and _conserved(out)


# --- inputs are what the user named -------------------------------------------------------

@pytest.mark.parametrize("literal,other", [("a[1].jsonl", "a1.jsonl"), ("data*.jsonl", "data1.jsonl"),
                                           ("what?.jsonl", "whatx.jsonl")])
def test_existing_file_with_glob_characters_is_read_literally(tmp_path, literal, other):
    _write(tmp_path / literal, _records(["literal"]))
    _write(tmp_path / other, _records(["other"]))
    (shard,) = expand_inputs([str(tmp_path / literal)])
    assert shard.name == literal and shard.url == str(tmp_path / literal)
    assert [r["text"] for r in collect(shard)["record"]] == ["literal"]


def test_glob_characters_still_glob_when_no_such_file(tmp_path):
    for name in ("data1.jsonl", "data2.jsonl", "a1.jsonl"):
        _write(tmp_path / name, b"")
    assert [s.name for s in expand_inputs([f"{tmp_path}/data*.jsonl"])] == ["data1.jsonl", "data2.jsonl"]
    assert [s.name for s in expand_inputs([f"{tmp_path}/a[1].jsonl"])] == ["a1.jsonl"]


def test_memory_literal_with_brackets():
    fs = fsspec.filesystem("memory")
    fs.pipe({"/cg-read-lit/a[1].jsonl": _records(["literal"]), "/cg-read-lit/a1.jsonl": _records(["other"])})
    try:
        (shard,) = expand_inputs(["memory://cg-read-lit/a[1].jsonl"])
        assert shard.name == "a[1].jsonl" and shard.url.startswith("memory://")
        assert shard.url.endswith("/cg-read-lit/a[1].jsonl")
        assert collect(shard)["record"][0]["text"] == "literal"
    finally:
        fs.rm("/cg-read-lit", recursive=True)


def _tree(root, names):
    for name in names:
        os.makedirs(os.path.dirname(os.path.join(root, name)), exist_ok=True)
        _write(os.path.join(root, name), b"")


def test_output_folder_inside_the_input_glob_is_skipped(tmp_path):
    _tree(tmp_path, ["in/x.jsonl", "in/out/part-0.jsonl", "in/out/sub/y.jsonl", "in/out2/z.jsonl"])
    shards = expand_inputs([f"{tmp_path}/in/**/*.jsonl"], exclude=f"{tmp_path}/in/out")
    assert [s.name for s in shards] == ["out2/z.jsonl", "x.jsonl"]  # out2/ is not under out/
    assert [s.name for s in expand_inputs([f"{tmp_path}/in/**/*.jsonl"], exclude=f"{tmp_path}/in/out/")] == [
        "out2/z.jsonl", "x.jsonl"]


def test_output_given_relative_or_through_a_link_is_still_skipped(tmp_path, monkeypatch):
    _tree(tmp_path, ["in/x.jsonl", "in/out/part-0.jsonl"])
    monkeypatch.chdir(tmp_path / "in")
    assert [s.name for s in expand_inputs([f"{tmp_path}/in/**/*.jsonl"], exclude="out")] == ["x.jsonl"]
    os.symlink(tmp_path / "in" / "out", tmp_path / "link")
    assert [s.name for s in expand_inputs([f"{tmp_path}/in/**/*.jsonl"], exclude=str(tmp_path / "link"))] == [
        "x.jsonl"]


def test_pattern_matching_only_the_output_fails(tmp_path):
    _tree(tmp_path, ["out/part-0.jsonl", "out/part-1.jsonl"])
    with pytest.raises(InputError, match="matched only files inside --output"):
        expand_inputs([f"{tmp_path}/out/*.jsonl"], exclude=str(tmp_path / "out"))
    with pytest.raises(InputError, match="is inside --output"):
        expand_inputs([f"{tmp_path}/out/part-0.jsonl"], exclude=str(tmp_path / "out"))
    with pytest.raises(InputError, match="inside --output"):  # the run's output is everything
        expand_inputs([f"{tmp_path}/out/*.jsonl"], exclude=str(tmp_path))


def test_output_on_memory_filesystem_is_skipped():
    fs = fsspec.filesystem("memory")
    fs.pipe({f"/cg-read-excl/{n}": b"" for n in ("x.jsonl", "out/p.jsonl", "out2/q.jsonl")})
    try:
        shards = expand_inputs(["memory://cg-read-excl/**/*.jsonl"], exclude="memory://cg-read-excl/out")
        assert [s.name for s in shards] == ["out2/q.jsonl", "x.jsonl"]
        with pytest.raises(InputError, match="is inside --output"):
            expand_inputs(["memory://cg-read-excl/out/p.jsonl"], exclude="memory://cg-read-excl/out/")
        # same path on another filesystem: not the output
        assert len(expand_inputs(["memory://cg-read-excl/**/*.jsonl"], exclude="/cg-read-excl/out")) == 3
    finally:
        fs.rm("/cg-read-excl", recursive=True)


def test_parquet_nanosecond_timestamps_are_kept(tmp_path):
    """A timestamp('ns') value with sub-microsecond digits reads (truncated to microseconds)
    instead of failing its row group."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = str(tmp_path / "ns.parquet")
    ts = pa.array([1_500_000_000_123_456_789, 1_600_000_000_000_000_001], type=pa.timestamp("ns", tz="UTC"))
    pq.write_table(pa.table({"id": ["a", "b"], "text": ["one doc", "two doc"], "timestamp": ts}), path)
    shard = expand_inputs([path])[0]
    out = list(iter_shard(shard, ReadConfig()))
    records = [v for k, v in out if k == "record"]
    assert [r["timestamp"] for r in records] == [1_500_000_000_123_456, 1_600_000_000_000_000]
    assert out[-1][1]["error"] is None and "timestamp_unparsed" not in records[0]["input_warnings"]


# --- a big shard is read in parts and cut into chunks; line numbers stay the shard's ---------

def _events_by_parts(shard, cfg):
    from collapseguard.transforms.read import iter_chunks, plan_parts

    parts = plan_parts(shard, cfg)
    events = [e for part in parts for e in iter_chunks(shard, cfg, part)]
    return parts, events


@pytest.mark.parametrize("suffix", ["jsonl", "parquet"])
def test_parts_read_exactly_what_the_whole_shard_reads(tmp_path, suffix):
    import pyarrow as pa

    texts = [f"document {i} " + "word " * (i % 7) for i in range(500)]
    path = tmp_path / f"s.{suffix}"
    lines = _records(texts).split(b"\n")[:-1]
    lines[17] = b"{broken json"
    lines[300] = b""
    if suffix == "jsonl":
        _write(path, b"\n".join(lines))  # no newline after the last line
    else:
        rows = [json.loads(x) for x in lines if x.startswith(b'{"')]
        pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=40)
    shard = expand_inputs([str(path)])[0]
    whole = collect(shard, ReadConfig())
    small = ReadConfig(chunk_documents=30)
    object.__setattr__(small, "split_bytes", 1000)  # below the config's floor, to force many parts
    parts, events = _events_by_parts(shard, small)
    assert len(parts) > 3 and [p.index for p in parts] == list(range(len(parts)))
    assert {p.count for p in parts} == {len(parts)}
    got = [(v["line"], v.get("id")) for k, _, v in events if k == "record"]
    assert got == [(r["line"], r["id"]) for r in whole["record"]]
    assert [v["line"] for k, _, v in events if k == "rejected"] == [r["line"] for r in whole["rejected"]]
    statuses = [v for k, _, v in events if k == "status"]
    assert sum(s["records_read"] for s in statuses) == whole["status"][0]["records_read"]
    assert max(s["records_read"] for s in statuses) <= 30
    assert len({s["chunk_key"] for s in statuses}) == len(statuses)
    assert sum(s["last"] for s in statuses) == len(parts) and not any(s["error"] for s in statuses)
    # a shard under split_bytes is one part
    assert _events_by_parts(shard, ReadConfig(chunk_documents=30))[0] == [Part()]


def test_compressed_jsonl_is_never_split(tmp_path):
    from collapseguard.transforms.read import plan_parts

    path = tmp_path / "s.jsonl.gz"
    _write(path, gzip.compress(_records([f"text {i}" for i in range(3000)])))
    cfg = ReadConfig()
    object.__setattr__(cfg, "split_bytes", 100)
    assert plan_parts(expand_inputs([str(path)])[0], cfg) == [Part()]
