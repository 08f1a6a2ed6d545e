"""Read shards (JSONL, JSONL.gz, JSONL.zst, Parquet) from any fsspec URL, record by record.

`iter_shard` is a pure generator over one shard: it yields ("record", dict),
("rejected", dict) and, last, exactly one ("status", dict). A shard that breaks mid-way
(truncated or corrupt compressed stream, unreadable Parquet row group) keeps what was read
before the break, rejects what it could not read, and reports the error in its status:
input never crashes a run, and never vanishes without an error either.
"""

from __future__ import annotations

import bz2
import contextlib
import dataclasses
import hashlib
import json
import logging
import lzma
import os
import posixpath
import re
from typing import Callable, Iterator

import apache_beam as beam
import fsspec
import zstandard
from apache_beam.pvalue import TaggedOutput
from fsspec.core import url_to_fs
from fsspec.implementations.local import LocalFileSystem

from collapseguard.core.settings import Range, setting
from collapseguard.transforms.dedup import id_location
from collapseguard.transforms.validate import FieldsConfig, coerce_record, parse_line, rejection


@dataclasses.dataclass(frozen=True)
class ReadConfig:
    fields: FieldsConfig = setting(factory=FieldsConfig)
    # "reject": later occurrences of an id go to rejected/ (reason duplicate_id);
    # "keep": they stay, flagged is_duplicate_id=True.
    duplicate_ids: str = setting("reject", choices=("reject", "keep"))
    # raw line kept in rejected/ records, clipped (0: none kept)
    raw_clip_chars: int = setting(2000, within=Range(0, 10_000_000))
    # read size when splitting shards into lines: read(0) returns b"" (every shard would read
    # as empty), tiny reads crawl, and each worker holds one chunk in memory
    chunk_bytes: int = setting(1 << 20, within=Range(4096, 1 << 28))
    # A shard is cut into chunks, in line order: every grouped element of the graph holds one
    # chunk at most (a worker's memory depends on these two, never on a shard's size). A chunk
    # ends after `chunk_documents` records, or before a record that would take its text over
    # `chunk_text_bytes` (a record larger than that is a chunk of its own).
    chunk_documents: int = setting(10_000, within=Range(1, 10_000_000))
    chunk_text_bytes: int = setting(64 << 20, within=Range(1024, 1 << 31))
    # A shard larger than this is read in parts of about this size by different workers, where
    # its format allows (uncompressed JSONL: byte ranges on line boundaries; Parquet: row groups).
    split_bytes: int = setting(64 << 20, within=Range(1 << 16, 1 << 40))

_GLOB_CHARS = re.compile(r"[*?\[]")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
PARQUET_SUFFIXES = (".parquet", ".pq")
PARQUET_BATCH_ROWS = 1024  # rows turned into Python dicts at a time
_COMPRESSED_SLICE = 1 << 16  # compressed bytes fed to a decoder per call (bounds its output)


class InputError(ValueError):
    """An --input pattern is unusable (matches nothing, unknown protocol...)."""


@dataclasses.dataclass(frozen=True, order=True)
class Shard:
    url: str  # full fsspec URL
    name: str  # path relative to the pattern's fixed prefix: stable across storage backends
    index: int  # position in the sorted shard list: defines which duplicate id comes first
    size: int = 0  # bytes on storage (compressed), for progress and ETA

    @property
    def key(self) -> str:
        """File-name-safe, unique key for this shard's output files."""
        safe = _UNSAFE.sub("_", self.name.replace("/", "__")).strip("._")[:80] or "shard"
        return f"{safe}-{hashlib.sha1(self.name.encode('utf-8')).hexdigest()[:8]}"


@dataclasses.dataclass(frozen=True, order=True)
class Part:
    """A piece of a shard that one worker reads on its own (`plan_parts`): JSONL bytes
    [start, end) whose first line is line `first_line`, or Parquet row groups [start, end) whose
    first row is line `first_line`. `end` None reads to the end. A shard that is not split is
    one part, `Part()`. Line numbers are the whole shard's, so a record's line (its order, its
    duplicate-id precedence, its output row order) does not depend on how the shard was split."""

    index: int = 0
    count: int = 1
    start: int = 0
    end: int | None = None
    first_line: int = 1


def _fixed_prefix(path: str) -> str:
    m = _GLOB_CHARS.search(path)
    if not m:
        return posixpath.dirname(path)
    return posixpath.dirname(path[: m.start()])


def _location(fs, path: str) -> tuple[str, str]:
    """(filesystem, normalised absolute path): two locations on one filesystem compare as text.

    Local paths go through realpath so a symlink or a relative --output still matches the
    files it holds; object stores have no links, only a lexical normal form.
    """
    if isinstance(fs, LocalFileSystem):
        return "file", os.path.realpath(path)
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    return protocol, posixpath.normpath("/" + fs._strip_protocol(path).lstrip("/"))


def _inside(location: tuple[str, str], folder: tuple[str, str]) -> bool:
    """True when `location` is `folder` or below it ('/out2' is not below '/out')."""
    (fs_a, a), (fs_b, b) = location, folder
    return fs_a == fs_b and (a == b or a.startswith(b.rstrip("/") + "/"))


def _match_files(fs, path: str) -> tuple[list[str], str, bool]:
    """(files, folder their names are relative to, whether `path` named one file literally).

    A path that exists as a file is that file, even when its name holds glob characters
    (`a[1].jsonl` must not read `a1.jsonl`); only otherwise is it a glob.
    """
    if fs.isfile(path):
        return [path], posixpath.dirname(path), True
    try:
        matches = fs.glob(path) if _GLOB_CHARS.search(path) else []
    except ValueError as e:  # an invalid pattern (e.g. '**' inside a path component)
        raise InputError(f"--input {path!r}: {e}") from e
    return sorted(m for m in matches if fs.isfile(m)), _fixed_prefix(path), False


def expand_inputs(patterns: list[str], exclude: str | None = None) -> list[Shard]:
    """Expands comma-separated globs into a sorted, de-duplicated list of shards.

    Runs at launch (like Beam's own file-based sources) so a pattern matching nothing fails
    fast with a clear message. `exclude` is the run's --output: files at or under it are
    never inputs (a glob over a folder that holds the output would otherwise read the
    previous run's results as new data).
    """
    out = None
    if exclude:
        try:
            out = _location(*url_to_fs(exclude))
        except (ValueError, ImportError) as e:
            raise InputError(f"--output {exclude!r}: {e}") from e
    found: dict[str, str] = {}
    sizes: dict[str, int] = {}
    for pattern in patterns:
        try:
            fs, path = url_to_fs(pattern)
        except (ValueError, ImportError) as e:
            raise InputError(f"--input {pattern!r}: {e}") from e
        files, base, literal = _match_files(fs, fs._strip_protocol(path))
        if not files:
            raise InputError(f"--input {pattern!r} matched no files")
        if out is not None:
            kept = [m for m in files if not _inside(_location(fs, m), out)]
            if not kept:
                what = "is inside" if literal else "matched only files inside"
                raise InputError(f"--input {pattern!r} {what} --output {exclude!r}")
            if len(kept) < len(files):
                logging.getLogger("collapseguard").warning(
                    "--input %r: skipped %d file(s) inside --output %r", pattern, len(files) - len(kept), exclude)
            files = kept
        for m in files:
            url = m if isinstance(fs, LocalFileSystem) else fs.unstrip_protocol(m)
            rel = posixpath.relpath(m, base) if base else m
            found.setdefault(url, rel)
            try:
                sizes[url] = int(fs.size(m) or 0)
            except (OSError, ValueError):
                sizes[url] = 0
    names = list(found.values())
    if len(set(names)) != len(names):  # same relative name under two patterns: use full paths
        found = {u: u.split("://", 1)[-1].lstrip("/") for u in found}
    return [Shard(url=u, name=found[u], index=i, size=sizes.get(u, 0)) for i, u in enumerate(sorted(found))]


def shard_format(url: str) -> str:
    lower = url.lower()
    return "parquet" if lower.endswith(PARQUET_SUFFIXES) else "jsonl"


def _strict_decoder(url: str) -> tuple[Callable[[], object], bool] | None:
    """(one-stream decoder factory, NUL padding allowed between streams), by file suffix.

    Gzip stays with fsspec/the gzip module, which already raises on a cut or on bytes after
    the last member; zstd, bz2 and xz do not (see StrictDecompressor). Only xz defines
    stream padding; in the others a NUL byte between streams is garbage.
    """
    ext = url.lower().rsplit(".", 1)[-1]
    if ext == "zst":
        return zstandard.ZstdDecompressor().decompressobj, False  # one frame per call
    if ext == "bz2":
        return bz2.BZ2Decompressor, False
    if ext in ("xz", "lzma"):
        return lzma.LZMADecompressor, True
    return None


class StrictDecompressor:
    """Binary reader over concatenated compressed streams that fails loudly on a bad file.

    Why not fsspec's own readers: zstandard's stream_reader returns a short read when a file
    is cut inside a frame (a truncated upload reads as a smaller, clean shard), and the bz2
    and lzma file objects drop whatever follows a complete stream if it does not decode (a
    corrupt second stream vanishes). Here a file must be whole streams to its last byte, or
    read1 raises: EOFError for a cut (same message as gzip's), the decoder's own error for
    garbage. NUL bytes between streams are skipped only when `padding` (xz stream padding).

    Output per call is bounded by feeding at most `slice_bytes` compressed bytes at a time.
    """

    def __init__(self, raw, new_decoder: Callable[[], object], padding: bool = False,
                 slice_bytes: int = _COMPRESSED_SLICE):
        self._raw, self._new, self._padding, self._slice = raw, new_decoder, padding, slice_bytes
        self._decoder = None  # decoder of the stream in progress; None between streams
        self._streams = 0  # complete streams decoded so far
        self._out, self._pos = b"", 0
        self._error: Exception | None = None  # raised once the output decoded before it is read

    def read1(self, size: int = -1) -> bytes:
        while self._pos >= len(self._out):
            if self._error is not None:
                raise self._error
            data = self._raw.read(self._slice)
            if not data:
                if self._decoder is not None or self._streams == 0:
                    raise EOFError("Compressed file ended before the end-of-stream marker was reached")
                return b""
            self._out, self._pos = self._decode(data), 0
        end = len(self._out) if size is None or size < 0 else min(len(self._out), self._pos + size)
        chunk, self._pos = self._out[self._pos:end], end
        return chunk

    read = read1

    def _decode(self, data: bytes) -> bytes:
        """Decodes one slice, across stream ends; an error waits behind the output before it."""
        out = []
        try:
            while data:
                if self._decoder is None:
                    if self._streams and self._padding:
                        data = data.lstrip(b"\0")
                        if not data:
                            break
                    self._decoder = self._new()
                out.append(self._decoder.decompress(data))
                if not self._decoder.eof:
                    break
                data, self._decoder = self._decoder.unused_data, None
                self._streams += 1
        except Exception as e:  # noqa: BLE001 - any decoder error; re-raised by read1
            self._error = e
        return b"".join(out)


@contextlib.contextmanager
def open_jsonl(url: str) -> Iterator:
    """Opens a JSONL shard as a binary stream of its decompressed bytes."""
    strict = _strict_decoder(url)
    if strict is None:
        with fsspec.open(url, "rb", compression="infer") as f:
            yield f
    else:
        with fsspec.open(url, "rb") as raw:
            yield StrictDecompressor(raw, *strict)


class _Partial(Exception):
    def __init__(self, cause: BaseException, line: int, partial: bytes):
        self.cause, self.line, self.partial = cause, line, partial


class _Limited:
    """The next `n` bytes of a binary stream, through read1."""

    def __init__(self, f, n: int):
        self._read = getattr(f, "read1", f.read)
        self._left = n

    def read1(self, size: int = -1) -> bytes:
        if self._left <= 0:
            return b""
        data = self._read(min(size if size > 0 else self._left, self._left))
        self._left -= len(data)
        return data

    read = read1


def iter_lines(f, chunk_bytes: int, first_line: int = 1) -> Iterator[tuple[int, bytes]]:
    """Splits a binary stream into (1-based line number, line bytes without newline).

    Reads fixed-size chunks (a 30 MB line costs 30 MB, never more). If the stream breaks
    (truncated gzip, I/O error), every complete line before the break has been yielded and
    _Partial is raised carrying the unfinished line.
    """
    pending: list[bytes] = []  # pieces of the current, unfinished line (no quadratic concat)
    n = first_line - 1
    # read1 returns what one underlying read decoded; a buffered read() that hits a broken
    # stream discards the data it had already gathered in that call.
    read = getattr(f, "read1", f.read)
    try:
        while True:
            chunk = read(chunk_bytes)
            if not chunk:
                break
            if b"\n" not in chunk:
                pending.append(chunk)
                continue
            pending.append(chunk)
            *lines, tail = b"".join(pending).split(b"\n")
            pending = [tail] if tail else []
            for line in lines:
                n += 1
                yield n, line
    except Exception as e:  # noqa: BLE001 - any decoder/IO failure ends the shard, reported
        raise _Partial(e, n + 1, b"".join(pending)) from e
    if pending:
        n += 1
        yield n, b"".join(pending)


@dataclasses.dataclass(frozen=True)
class _LostRows:
    """Rows of a Parquet row group that could not be read: `lines` are their line numbers."""

    error: str  # names the row group and the exception
    lines: range


def _row_group_rows(pf, group: int, batch_rows: int) -> Iterator[dict]:
    """The rows of one row group as dicts, converted `batch_rows` at a time."""
    for batch in _microsecond_timestamps(pf.read_row_group(group)).to_batches(max_chunksize=batch_rows):
        yield from batch.to_pylist()


def _microsecond_timestamps(table):
    """Nanosecond timestamp columns cast to microseconds (the schema's unit): without pandas,
    pyarrow cannot turn a value with sub-microsecond digits into a Python object, and the whole
    row group would be lost over a precision the output does not keep."""
    import pyarrow as pa

    for i, f in enumerate(table.schema):
        if pa.types.is_timestamp(f.type) and f.type.unit == "ns":
            table = table.set_column(i, f.name, table.column(i).cast(pa.timestamp("us", tz=f.type.tz), safe=False))
    return table


def iter_parquet_rows(pf, batch_rows: int = PARQUET_BATCH_ROWS,
                      groups: range | None = None) -> Iterator[tuple[int, dict | _LostRows]]:
    """(line, row) for every readable row of a pq.ParquetFile, (first lost line, _LostRows) else.

    Read row group by row group so one corrupt group costs its own rows, not the file's.
    Line numbers come from the footer (cumulative num_rows, 1-based), so a row keeps its
    line whether or not the groups before it could be read. A group that fails, even
    part-way, or yields fewer rows than its footer promises, reports the rows it did not
    deliver, one line each, so records_read == valid + rejected stays exact.
    """
    groups = range(pf.num_row_groups) if groups is None else groups
    start = sum(pf.metadata.row_group(g).num_rows for g in range(groups.start))
    for group in groups:
        expected = pf.metadata.row_group(group).num_rows
        done = 0
        error = None
        try:
            for row in _row_group_rows(pf, group, batch_rows):
                done += 1
                yield start + done, row
        except Exception as e:  # noqa: BLE001 - a corrupt row group is reported, never fatal
            error = f"{type(e).__name__}: {str(e).strip()}"
        if done < expected or error:
            error = error or f"read {done} rows, the footer says {expected}"
            lost = range(start + done + 1, start + expected + 1)
            yield lost.start, _LostRows(f"row group {group} of {pf.num_row_groups}: {error}", lost)
        start += expected


def _parquet_events(shard: Shard, cfg: ReadConfig, status: dict, part: Part) -> Iterator[tuple[dict | None, dict | None]]:
    """(record, rejection) pairs for a Parquet shard; row group failures go to `status`."""
    import pyarrow.parquet as pq

    fields, clip_chars = cfg.fields, cfg.raw_clip_chars
    with fsspec.open(shard.url, "rb") as f:
        # Pages written with CRCs are checked: a flipped byte fails its row group instead of
        # reading as plausible garbage (files without CRCs read as before).
        pf = pq.ParquetFile(f, page_checksum_verification=True)
        groups = range(part.start, pf.num_row_groups if part.end is None else part.end)
        for line, row in iter_parquet_rows(pf, groups=groups):
            if not isinstance(row, _LostRows):
                yield coerce_record(row, shard.name, line, fields, row, clip_chars)
                continue
            status["row_groups_failed"] += 1
            status["error"] = status["error"] or f"unreadable_row_group: {row.error}"
            for lost in row.lines:
                yield None, rejection(shard.name, lost, "unreadable_row_group", row.error, "", clip_chars)


def _jsonl_events(shard: Shard, cfg: ReadConfig, status: dict, part: Part) -> Iterator[tuple[dict | None, dict | None]]:
    """(record, rejection) pairs for a JSONL shard (or one byte range of an uncompressed one); a
    broken stream goes to `status`."""
    fields, clip_chars = cfg.fields, cfg.raw_clip_chars
    with contextlib.ExitStack() as stack:
        if part == Part():
            f = stack.enter_context(open_jsonl(shard.url))
        else:  # an uncompressed shard's byte range (plan_parts splits no other kind)
            f = stack.enter_context(fsspec.open(shard.url, "rb"))
            f.seek(part.start)
            if part.end is not None:
                f = _Limited(f, part.end - part.start)
        try:
            for line, raw in iter_lines(f, cfg.chunk_bytes, part.first_line):
                yield parse_line(raw, shard.name, line, fields, clip_chars)
        except _Partial as p:
            status["error"] = f"{type(p.cause).__name__}: {p.cause}"
            if p.partial:
                yield None, rejection(shard.name, p.line, "truncated_shard", status["error"], p.partial, clip_chars)


def _newline_parts(f, target_bytes: int, block: int = 1 << 24) -> list[Part]:
    """Byte ranges of about `target_bytes` that start and end on line boundaries, with the line
    number each starts at: one sequential pass that counts newlines (no parsing)."""
    bounds: list[tuple[int, int]] = [(0, 1)]  # (start byte, first line)
    pos = lines = 0
    target = target_bytes
    while True:
        data = f.read(block)
        if not data:
            break
        off = 0
        while pos + len(data) > target:
            i = data.find(b"\n", max(off, target - pos))
            if i < 0:
                target = pos + len(data)  # the boundary is the next block's first newline
                break
            lines += data.count(b"\n", off, i + 1)
            off = i + 1
            bounds.append((pos + off, lines + 1))
            target = pos + off + target_bytes
        lines += data.count(b"\n", off)
        pos += len(data)
    if len(bounds) > 1 and bounds[-1][0] >= pos:  # the last boundary is the end of the file
        bounds.pop()
    ends = [b for b, _ in bounds[1:]] + [None]
    return [Part(i, len(bounds), start, end, first) for i, ((start, first), end) in enumerate(zip(bounds, ends))]


def plan_parts(shard: Shard, cfg: ReadConfig) -> list[Part]:
    """How `shard` is read: in parts of about `cfg.split_bytes` where the format allows it
    (uncompressed JSONL: byte ranges on line boundaries; Parquet: runs of row groups), else
    whole. A shard that cannot be inspected is read whole, and its error reported then."""
    if shard.size <= cfg.split_bytes:
        return [Part()]
    try:
        if shard_format(shard.url) == "parquet":
            import pyarrow.parquet as pq

            with fsspec.open(shard.url, "rb") as f:
                meta = pq.ParquetFile(f).metadata
            starts, size = [0], 0
            for g in range(meta.num_row_groups):
                if size >= cfg.split_bytes:
                    starts.append(g)
                    size = 0
                size += meta.row_group(g).total_byte_size
            rows = [meta.row_group(g).num_rows for g in range(meta.num_row_groups)]
            ends = starts[1:] + [None]
            return [Part(i, len(starts), a, b, sum(rows[:a]) + 1) for i, (a, b) in enumerate(zip(starts, ends))]
        if fsspec.utils.infer_compression(shard.url) is not None or _strict_decoder(shard.url) is not None:
            return [Part()]
        with fsspec.open(shard.url, "rb") as f:
            parts = _newline_parts(f, cfg.split_bytes)
        return parts if len(parts) > 1 else [Part()]
    except Exception:  # noqa: BLE001 - unreadable here is unreadable when read: reported there
        return [Part()]


def iter_shard(shard: Shard, cfg: ReadConfig, part: Part = Part()) -> Iterator[tuple[str, dict]]:
    status = {
        "shard": shard.name,
        "shard_key": shard.key,
        "url": shard.url,
        "records_read": 0,
        "records_valid": 0,
        "records_rejected": 0,
        "error": None,  # first error met; set means the shard is listed in shards_with_errors
        "row_groups_failed": 0,  # Parquet row groups whose rows were rejected as unreadable
    }
    events = _parquet_events if shard_format(shard.url) == "parquet" else _jsonl_events
    try:
        for record, rej in events(shard, cfg, status, part):
            status["records_read"] += 1
            if record is not None:
                record["shard_key"] = shard.key
                record["shard_index"] = shard.index
                status["records_valid"] += 1
                yield "record", record
            else:
                status["records_rejected"] += 1
                yield "rejected", rej
    except Exception as e:  # noqa: BLE001 - unreadable shard: reported, never fatal
        status["error"] = status["error"] or f"{type(e).__name__}: {e}"
    yield "status", status


def chunk_key(shard_key: str, part: int, chunk: int) -> str:
    """A chunk's key: its output files' names (`<stratum>/<chunk_key>.parquet`), stable across
    runs and runners: the shard's key, the part (`Part.index`) and the chunk within the part."""
    return f"{shard_key}.{part:05d}.{chunk:05d}"


def utf8_len(text: str) -> int:
    """UTF-8 bytes of `text`; ASCII text (checked in O(1)) is not encoded to count it."""
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def chunk_status(shard_name: str, shard_key: str, part: int, parts: int, chunk: int, records: int,
                 text_bytes: int, last: dict | None) -> dict:
    """The status a chunk reports once (`iter_chunks`; `pipeline.curate` for in-memory records):
    where it sits, what it holds, and on a part's last chunk (`last`: the reader's status) the
    part's error."""
    return {"shard": shard_name, "shard_key": shard_key, "part": part, "parts": parts, "chunk": chunk,
            "chunk_key": chunk_key(shard_key, part, chunk), "records_read": records, "text_bytes": text_bytes,
            "last": last is not None, "error": (last or {}).get("error"),
            "row_groups_failed": (last or {}).get("row_groups_failed", 0)}


def iter_chunks(shard: Shard, cfg: ReadConfig, part: Part = Part()) -> Iterator[tuple[str, str, dict]]:
    """`iter_shard`'s events as (kind, chunk_key, value), cut into chunks in line order.

    A chunk ends after `cfg.chunk_documents` records (valid or rejected), or before one whose text
    would take it over `cfg.chunk_text_bytes`. Each chunk ends with exactly one ("status", key,
    chunk status): its part and index, records and bytes, and, on the part's last chunk, the
    part's error. A part with no records is one empty chunk. Pure and sequential: the same
    shard, part and config give the same chunks on every runner.
    """
    chunk, docs, nbytes = 0, 0, 0

    def status(last: dict | None) -> dict:
        return chunk_status(shard.name, shard.key, part.index, part.count, chunk, docs, nbytes, last)

    for kind, value in iter_shard(shard, cfg, part):
        if kind == "status":
            yield "status", chunk_key(shard.key, part.index, chunk), status(value)
            return
        size = utf8_len(value["text"] if kind == "record" else value.get("raw") or "")
        if docs and (docs >= cfg.chunk_documents or nbytes + size > cfg.chunk_text_bytes):
            yield "status", chunk_key(shard.key, part.index, chunk), status(None)
            chunk, docs, nbytes = chunk + 1, 0, 0
        docs += 1
        nbytes += size
        key = chunk_key(shard.key, part.index, chunk)
        if kind == "record":
            value["chunk_key"] = key
        yield kind, key, value


class Progress:
    """Documents/s, words/s and an ETA from bytes read against the total input bytes.

    Process-local (each worker logs what it has read; a local run has one). The same figures
    go to Beam metrics counters (bytes_read, records_read, words_read), which remote runners
    show in their UIs.
    """

    def __init__(self, total_bytes: int, every_s: float = 5.0, clock=None):
        import time

        self._clock = clock or time.monotonic
        self.total = max(1, total_bytes)
        self.every = every_s
        self.start = self._clock()
        self.last = self.start
        self.bytes = self.docs = self.words = 0

    def add(self, nbytes: int, docs: int, words: int) -> str | None:
        self.bytes += nbytes
        self.docs += docs
        self.words += words
        now = self._clock()
        if now - self.last < self.every and self.bytes < self.total:
            return None
        self.last = now
        return self.line(now)

    def line(self, now: float) -> str:
        import datetime as dt

        elapsed = max(1e-9, now - self.start)
        frac = min(1.0, self.bytes / self.total)
        eta = dt.timedelta(seconds=round(elapsed * (1 - frac) / frac)) if frac > 0 else "?"
        return (f"progress: {frac:6.1%} of {self.total / 1e6:.1f} MB read, {self.docs / elapsed:,.0f} docs/s, "
                f"{self.words / elapsed:,.0f} words/s, ETA {eta}")


class ReadShards(beam.DoFn):
    """Reads one (shard, part) per element, cut into chunks (`iter_chunks`). Main output:
    records; tagged: 'rejected' and 'status' keyed by chunk, 'ids'.

    Chunks in `committed` (finished by an earlier run, see transforms/commit.py) only contribute
    their ids, so duplicate detection sees the whole input.
    """

    REJECTED = "rejected"
    STATUS = "status"
    IDS = "ids"

    def __init__(self, cfg: ReadConfig, committed: frozenset[str] = frozenset(), total_bytes: int = 0):
        self._cfg = cfg
        self._committed = committed
        self._total_bytes = total_bytes
        self._progress = None
        self._bytes = beam.metrics.Metrics.counter("collapseguard", "bytes_read")
        self._words = beam.metrics.Metrics.counter("collapseguard", "words_read")
        self._records = beam.metrics.Metrics.counter("collapseguard", "records_read")
        self._rejected = beam.metrics.Metrics.counter("collapseguard", "records_rejected")

    def process(self, element: tuple[Shard, Part]):
        shard, part = element
        if self._progress is None:  # the clock starts with the first shard, not after it
            self._progress = Progress(self._total_bytes)
        docs = words = 0
        for kind, key, value in iter_chunks(shard, self._cfg, part):
            if key in self._committed:  # done by an earlier run: its ids still count for duplicates
                if kind == "record":
                    yield TaggedOutput(self.IDS, id_location(value))
                continue
            if kind == "record":
                self._records.inc()
                docs += 1
                words += value["text"].count(" ") + 1  # cheap word estimate for words/s
                yield TaggedOutput(self.IDS, id_location(value))
                yield value
            elif kind == "rejected":
                self._rejected.inc()
                yield TaggedOutput(self.REJECTED, (key, ("rejected", value)))
            else:
                yield TaggedOutput(self.STATUS, (key, ("status", value)))
        nbytes = shard.size if part.count == 1 else shard.size // part.count
        self._bytes.inc(nbytes)
        self._words.inc(words)
        line = self._progress.add(nbytes, docs, words)
        if line:
            logging.getLogger("collapseguard").info(line)


def dumps_rejected(rej: dict) -> str:
    return json.dumps(rej, ensure_ascii=False, sort_keys=True)
