"""Read shards (JSONL, JSONL.gz, JSONL.zst, Parquet) from any fsspec URL, record by record.

`iter_shard` is a pure generator over one shard: it yields ("record", dict),
("rejected", dict) and, last, exactly one ("status", dict). A shard that breaks mid-way
(truncated gzip, corrupt Parquet) keeps what was read before the break, rejects the partial
line it was in, and reports the error in its status: input never crashes a run.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import posixpath
import re
from typing import Iterator

import apache_beam as beam
from apache_beam.pvalue import TaggedOutput

from collapseguard.pipeline.config import ReadConfig
from collapseguard.transforms.validate import coerce_record, parse_line, rejection

_GLOB_CHARS = re.compile(r"[*?\[]")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
PARQUET_SUFFIXES = (".parquet", ".pq")


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


def _fixed_prefix(path: str) -> str:
    m = _GLOB_CHARS.search(path)
    if not m:
        return posixpath.dirname(path)
    return posixpath.dirname(path[: m.start()])


def expand_inputs(patterns: list[str]) -> list[Shard]:
    """Expands comma-separated globs into a sorted, de-duplicated list of shards.

    Runs at launch (like Beam's own file-based sources) so a pattern matching nothing fails
    fast with a clear message.
    """
    import fsspec
    from fsspec.core import url_to_fs

    found: dict[str, str] = {}
    sizes: dict[str, int] = {}
    for pattern in patterns:
        try:
            fs, path = url_to_fs(pattern)
        except (ValueError, ImportError) as e:
            raise InputError(f"--input {pattern!r}: {e}") from e
        matches = fs.glob(path) if _GLOB_CHARS.search(path) else ([path] if fs.exists(path) else [])
        files = [m for m in matches if fs.isfile(m)]
        if not files:
            raise InputError(f"--input {pattern!r} matched no files")
        base = _fixed_prefix(fs._strip_protocol(path))
        for m in sorted(files):
            url = fs.unstrip_protocol(m) if not isinstance(fs, fsspec.implementations.local.LocalFileSystem) else m
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


class _Partial(Exception):
    def __init__(self, cause: BaseException, line: int, partial: bytes):
        self.cause, self.line, self.partial = cause, line, partial


def iter_lines(f, chunk_bytes: int) -> Iterator[tuple[int, bytes]]:
    """Splits a binary stream into (1-based line number, line bytes without newline).

    Reads fixed-size chunks (a 30 MB line costs 30 MB, never more). If the stream breaks
    (truncated gzip, I/O error), every complete line before the break has been yielded and
    _Partial is raised carrying the unfinished line.
    """
    pending: list[bytes] = []  # pieces of the current, unfinished line (no quadratic concat)
    n = 0
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


def iter_shard(shard: Shard, cfg: ReadConfig) -> Iterator[tuple[str, dict]]:
    status = {
        "shard": shard.name,
        "shard_key": shard.key,
        "url": shard.url,
        "records_read": 0,
        "records_valid": 0,
        "records_rejected": 0,
        "error": None,
    }

    def emit(record, rej):
        status["records_read"] += 1
        if record is not None:
            record["shard_key"] = shard.key
            record["shard_index"] = shard.index
            status["records_valid"] += 1
            return "record", record
        status["records_rejected"] += 1
        return "rejected", rej

    import fsspec

    fields, clip_chars = cfg.fields, cfg.raw_clip_chars
    try:
        if shard_format(shard.url) == "parquet":
            import pyarrow.parquet as pq

            with fsspec.open(shard.url, "rb") as f:
                pf = pq.ParquetFile(f)
                line = 0
                for batch in pf.iter_batches(batch_size=1024):
                    for row in batch.to_pylist():
                        line += 1
                        yield emit(*coerce_record(row, shard.name, line, fields, row, clip_chars))
        else:
            with fsspec.open(shard.url, "rb", compression="infer") as f:
                try:
                    for line, raw in iter_lines(f, cfg.chunk_bytes):
                        yield emit(*parse_line(raw, shard.name, line, fields, clip_chars))
                except _Partial as p:
                    status["error"] = f"{type(p.cause).__name__}: {p.cause}"
                    if p.partial:
                        yield emit(
                            None,
                            rejection(shard.name, p.line, "truncated_shard", status["error"], p.partial, clip_chars),
                        )
    except Exception as e:  # noqa: BLE001 - unreadable shard: reported, never fatal
        status["error"] = f"{type(e).__name__}: {e}"
    yield "status", status


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
    """Reads one shard per element. Main output: records; tagged: 'rejected', 'status', 'ids'.

    Shards in `committed` (already finished by an earlier run, see transforms/commit.py) only
    contribute their ids, so duplicate detection sees the whole input.
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

    def process(self, shard: Shard):
        from collapseguard.transforms.dedup import id_location

        if shard.key in self._committed:
            for kind, value in iter_shard(shard, self._cfg):
                if kind == "record":
                    yield TaggedOutput(self.IDS, id_location(value))
            return
        if self._progress is None:  # the clock starts with the first shard, not after it
            self._progress = Progress(self._total_bytes)
        docs = words = 0
        for kind, value in iter_shard(shard, self._cfg):
            if kind == "record":
                self._records.inc()
                docs += 1
                words += value["text"].count(" ") + 1  # cheap word estimate for words/s
                yield TaggedOutput(self.IDS, id_location(value))
                yield value
            elif kind == "rejected":
                self._rejected.inc()
                yield TaggedOutput(self.REJECTED, (shard.key, ("rejected", value)))
            else:
                yield TaggedOutput(self.STATUS, (shard.key, ("status", value)))
        self._bytes.inc(shard.size)
        self._words.inc(words)
        line = self._progress.add(shard.size, docs, words)
        if line:
            logging.getLogger("collapseguard").info(line)


def dumps_rejected(rej: dict) -> str:
    return json.dumps(rej, ensure_ascii=False, sort_keys=True)
