"""Test data builders shared by several test modules (plain functions, no fixtures)."""

from __future__ import annotations

import gzip
import json
import os

HUMAN = [
    "The committee met on Tuesday to review the budget for the coming year. Members raised "
    "concerns about the cost of the new library, which has doubled since the plans were first "
    "drawn up. The chair said a decision would be taken next month after a public consultation. "
    "Residents who spoke at the meeting were divided: some welcomed the investment in the town "
    "centre, while others argued the money would be better spent on roads and the swimming pool, "
    "which has been closed since a storm damaged its roof two winters ago.",
    "Lichens are composite organisms made of a fungus living among algae or cyanobacteria. They "
    "grow on bark, rock and soil from the tropics to the polar deserts, and some species survive "
    "years without water. Because many lichens absorb pollutants directly from the air, botanists "
    "have used them since the nineteenth century as indicators of air quality around cities, "
    "mapping which species vanish first as sulphur dioxide rises and which return when it falls.",
]


def jl(obj) -> bytes:
    return (json.dumps(obj, ensure_ascii=False) + "\n").encode("utf-8")


def write_hostile(folder: str) -> dict:
    """Writes the hostile input folder; returns expectations {valid_ids, rejected_reasons}."""
    os.makedirs(folder, exist_ok=True)
    valid: list[str] = []
    reasons: list[str] = []

    lines = []
    lines.append(b'{"id": "ok-1", "text": ' + json.dumps(HUMAN[0]).encode() + b', "source": "news"}'); valid.append("ok-1")
    lines.append(b'{"id": "bad-json", "text": "unterminated'); reasons.append("invalid_json")
    lines.append(b'{"id": "bad-utf8", "text": "caf\xe9 \xff"}'); reasons.append("invalid_utf8")
    lines.append(b'{"id": "wrong-type", "text": ["a", "list"]}'); reasons.append("text_not_string")
    lines.append(b'{"id": "empty", "text": "   "}'); reasons.append("empty_text")
    lines.append(b'{"id": "no-text", "body": "x"}'); reasons.append("missing_text")
    lines.append(b'"just a string"'); reasons.append("not_an_object")
    lines.append(b'{"id": "surrogate", "text": "lone \\ud800 surrogate"}'); reasons.append("text_not_utf8")
    lines.append(b'{"id": {"nested": 1}, "text": "bad id type"}'); reasons.append("invalid_id")
    lines.append(b''); reasons.append("blank_line")
    lines.append(b'{"id": "../../etc/passwd", "text": "Path characters in an id are data, not a path."}'); valid.append("../../etc/passwd")
    lines.append(b'{"id": "script", "text": "<script>alert(1)</script> Markup in a document stays text."}'); valid.append("script")
    lines.append(b'{"id": "ok-1", "text": "A second record reusing the id ok-1."}'); reasons.append("duplicate_id")
    lines.append(b'{"id": 12345, "text": "A numeric id is kept as the string 12345.", "timestamp": 1500000000}'); valid.append("12345")
    lines.append(b'{"id": "bad-ts", "text": "Bad timestamps are kept with a warning.", "timestamp": "not a date"}'); valid.append("bad-ts")
    with open(os.path.join(folder, "mixed.jsonl"), "wb") as f:
        f.write(b"\n".join(lines) + b"\n")

    # BOM at the start, CRLF line ends.
    with open(os.path.join(folder, "bom-crlf.jsonl"), "wb") as f:
        f.write(b"\xef\xbb\xbf" + jl({"id": "bom-1", "text": HUMAN[1]}).replace(b"\n", b"\r\n"))
        f.write(jl({"id": "crlf-2", "text": "Second line after CRLF."}).replace(b"\n", b"\r\n"))
    valid += ["bom-1", "crlf-2"]

    open(os.path.join(folder, "empty.jsonl"), "wb").close()

    # A 30 MB document and a 500k-character token.
    big = ("word " * 6_000_000)[:30_000_000]
    with open(os.path.join(folder, "huge.jsonl"), "wb") as f:
        f.write(jl({"id": "huge-30mb", "text": big}))
        f.write(jl({"id": "long-token", "text": "x" * 500_000}))
    valid += ["huge-30mb", "long-token"]

    # Truncated gzip: the records before the break survive, the partial line is rejected.
    payload = b"".join(jl({"id": f"gz-{i}", "text": f"Gzipped record number {i}. " * 20}) for i in range(200))
    blob = gzip.compress(payload, mtime=0)
    with open(os.path.join(folder, "truncated.jsonl.gz"), "wb") as f:
        f.write(blob[: len(blob) // 2])
    # which records survive depends on where zlib stops: computed from the data itself
    survived, partial = _gzip_prefix_lines(blob[: len(blob) // 2])
    valid += [json.loads(x)["id"] for x in survived]
    if partial:
        reasons.append("truncated_shard")
    return {"valid_ids": sorted(valid), "rejected_reasons": sorted(reasons)}


def _gzip_prefix_lines(blob: bytes) -> tuple[list[bytes], bytes]:
    import zlib

    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    data = d.decompress(blob)
    *complete, partial = data.split(b"\n")
    return complete, partial


def combine_in_order(fn, elements, chunks=1, order=None):
    """Runs a CombineFn by hand: `chunks` slices accumulated separately, merged in `order`.

    Tests call it with several orders to show a combiner's output does not depend on how a
    runner splits and merges its work.
    """
    size = -(-len(elements) // chunks)
    accs = []
    for i in range(chunks):
        acc = fn.create_accumulator()
        for e in elements[i * size:(i + 1) * size]:
            acc = fn.add_input(acc, e)
        accs.append(acc)
    order = list(order) if order is not None else list(range(chunks))
    merged = accs[order[0]]
    for i in order[1:]:
        merged = fn.merge_accumulators([merged, accs[i]])
    return fn.extract_output(fn.compact(merged))


def varied_jsonl(first: int, last: int, seed: int = 0) -> bytes:
    """JSONL records r{first}..r{last - 1} of random words: compresses about 3:1, like real text.

    Repetitive text compresses so well that a whole shard fits in one decoder read; this
    keeps a compressed shard long enough for a cut or a corruption to land mid-file.
    """
    import random

    rng = random.Random(seed)
    words = ["".join(rng.choices("abcdefghijklmnopqrstuvwxyz", k=rng.randint(2, 9))) for _ in range(3000)]
    rng = random.Random(seed * 1_000_003 + first)
    return b"".join(jl({"id": f"r{i}", "text": " ".join(rng.choices(words, k=40))}) for i in range(first, last))


def corrupt_parquet_row_group(path: str, group: int, how: str = "pages") -> None:
    """Damages one row group of a Parquet file in place, leaving footer and other groups intact.

    how="pages": every column chunk of the group overwritten with 0xFF, so its page headers
    cannot be parsed. how="flip": a few bytes flipped mid-chunk in each column, page headers
    intact: only a page CRC (write_page_checksum=True) can tell, otherwise it reads as garbage.
    """
    import pyarrow.parquet as pq

    meta = pq.ParquetFile(path).metadata.row_group(group)
    with open(path, "rb") as f:
        data = bytearray(f.read())
    for j in range(meta.num_columns):
        col = meta.column(j)
        start = col.dictionary_page_offset if col.has_dictionary_page else col.data_page_offset
        size = col.total_compressed_size
        if how == "pages":
            data[start:start + size] = b"\xff" * size
        else:
            mid = start + size // 2
            data[mid:mid + 4] = bytes(b ^ 0x5A for b in data[mid:mid + 4])
    with open(path, "wb") as f:
        f.write(data)


def garbage_parquet_footer(path: str) -> None:
    """Overwrites a Parquet file's footer metadata (kept length and magic) with garbage."""
    import struct

    with open(path, "rb") as f:
        data = bytearray(f.read())
    footer_len = struct.unpack("<I", data[-8:-4])[0]
    data[-8 - footer_len:-8] = b"\x07garbage" * (footer_len // 8) + b"\x07" * (footer_len % 8)
    with open(path, "wb") as f:
        f.write(data)
