import json
import math
import os

import pyarrow.parquet as pq
import pytest

from collapseguard.core.schema import OUTPUT_SCHEMA
from collapseguard.transforms.write import parquet_bytes, write_json, write_jsonl, write_parquet


def row(i, **kw):
    base = {"id": f"d{i}", "shard": "s", "line": i, "text": "x" * i, "provenance": "unverified_human",
            "stratum": "human_unverified", "timestamp": None, "_windows": [1.0]}
    base.update(kw)
    return base


def test_parquet_has_declared_schema_even_when_columns_are_all_null(tmp_path):
    path = str(tmp_path / "a" / "f.parquet")
    write_parquet(path, [row(1), row(2)])
    t = pq.read_table(path)
    assert t.schema.equals(OUTPUT_SCHEMA, check_metadata=False)
    assert t.column("lang").null_count == 2 and "_windows" not in t.column_names
    assert not [f for f in os.listdir(tmp_path / "a") if f.startswith(".tmp")]


def test_parquet_bytes_are_deterministic_and_row_groups_bounded(monkeypatch):
    rows = [row(i, text="y" * 1000) for i in range(50)]
    assert parquet_bytes(rows) == parquet_bytes(rows)
    import io

    import collapseguard.transforms.write as w

    monkeypatch.setattr(w, "ROW_GROUP_BYTES", 10_000)
    f = pq.ParquetFile(io.BytesIO(w.parquet_bytes(rows)))
    assert f.metadata.num_row_groups > 1 and f.metadata.num_rows == 50


def test_json_writers_sort_keys(tmp_path):
    write_json(str(tmp_path / "m.json"), {"b": 1, "a": 2})
    assert open(tmp_path / "m.json").read().index('"a"') < open(tmp_path / "m.json").read().index('"b"')
    write_jsonl(str(tmp_path / "r.jsonl"), [{"z": 1, "a": "<script>"}])
    assert json.loads(open(tmp_path / "r.jsonl").read()) == {"a": "<script>", "z": 1}


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_json_writer_refuses_nan_and_infinity_and_leaves_no_file(tmp_path, bad):
    """Manifest and mixture stay strict JSON: `NaN` / `Infinity` are no JSON a strict reader takes."""
    path = tmp_path / "m.json"
    with pytest.raises(ValueError, match="not JSON compliant"):
        write_json(str(path), {"entropy": {"floor_bits": bad}})
    assert not path.exists() and not [f for f in os.listdir(tmp_path) if f.startswith(".tmp")]
    write_json(str(path), {"entropy": {"floor_bits": 5.5}})
    assert json.loads(path.read_text(), parse_constant=lambda c: pytest.fail(c)) == {"entropy": {"floor_bits": 5.5}}


def test_writes_to_memory_filesystem():
    import fsspec

    write_parquet("memory://cg-write/out/x.parquet", [row(1)])
    fs = fsspec.filesystem("memory")
    assert fs.exists("/cg-write/out/x.parquet")
