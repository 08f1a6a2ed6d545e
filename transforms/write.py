"""Writers: Parquet per (stratum, input shard), rejected JSONL, manifest. Any fsspec URL.

Every file is written to a temporary name in its folder and renamed into place, so a reader
(or a resumed run) never sees half a file, and a retried bundle rewrites the same name.
Rows are sorted by input line before writing, so output bytes do not depend on the runner.
"""

from __future__ import annotations

import io
import json
import uuid

import pyarrow.parquet as pq

from collapseguard.core.schema import OUTPUT_SCHEMA, to_table

ROW_GROUP_BYTES = 64 << 20


def join(base: str, *parts: str) -> str:
    return "/".join([base.rstrip("/")] + [p.strip("/") for p in parts])


def _atomic_write(url: str, data: bytes) -> None:
    from fsspec.core import url_to_fs

    fs, path = url_to_fs(url)
    parent = path.rsplit("/", 1)[0]
    fs.makedirs(parent, exist_ok=True)
    tmp = f"{parent}/.tmp-{uuid.uuid4().hex}-{path.rsplit('/', 1)[-1]}"
    with fs.open(tmp, "wb") as f:
        f.write(data)
    fs.mv(tmp, path)


def parquet_bytes(rows: list[dict]) -> bytes:
    """Rows -> Parquet bytes with the declared schema, row groups bounded by size."""
    buf = io.BytesIO()
    with pq.ParquetWriter(buf, OUTPUT_SCHEMA, compression="zstd") as w:
        group: list[dict] = []
        size = 0
        for r in rows:
            group.append(r)
            size += len(r["text"]) + 512
            if size >= ROW_GROUP_BYTES:
                w.write_table(to_table(group))
                group, size = [], 0
        if group or not rows:
            w.write_table(to_table(group) if group else OUTPUT_SCHEMA.empty_table())
    return buf.getvalue()


def write_bytes(url: str, data: bytes) -> None:
    _atomic_write(url, data)


def write_parquet(url: str, rows: list[dict]) -> None:
    _atomic_write(url, parquet_bytes(rows))


def write_jsonl(url: str, rows: list[dict]) -> None:
    data = "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in rows)
    _atomic_write(url, data.encode("utf-8"))


def write_json(url: str, obj: dict) -> None:
    """Strict JSON (manifest, mixture): a NaN or an infinity raises instead of writing `NaN`,
    which no strict JSON reader accepts."""
    text = json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False)
    _atomic_write(url, (text + "\n").encode("utf-8"))
