"""Turn one raw input line (or Parquet row) into a clean record, or a rejection with a reason.

Pure functions: no Beam, no I/O. A rejection is a dict
``{"shard", "line", "reason", "detail", "raw"}``; every reason is a stable snake_case string
(the manifest counts them, tests assert them).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
from typing import Any

from collapseguard.pipeline.config import FieldsConfig

MAX_ID_CHARS = 512
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
_BOM = "\ufeff"


def clip(s: str, n: int) -> str:
    return s if len(s) <= n else s[:n] + f"...[clipped {len(s) - n} chars]"


def rejection(shard: str, line: int, reason: str, detail: str, raw: Any, clip_chars: int) -> dict:
    if isinstance(raw, bytes):
        raw = raw[: clip_chars * 4].decode("utf-8", errors="backslashreplace")
    elif not isinstance(raw, str):
        raw = json.dumps(raw, ensure_ascii=False, default=str, sort_keys=True)
    return {
        "shard": shard,
        "line": line,
        "reason": reason,
        "detail": clip(detail, 500),
        "raw": clip(raw, clip_chars),
    }


def auto_id(shard: str, line: int, text: str) -> str:
    """Deterministic id for records without one: shard path, line number, content hash."""
    content = hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]
    loc = hashlib.sha1(f"{shard}\x00{line}".encode("utf-8")).hexdigest()[:8]
    return f"cg-{loc}-{content}"


def parse_timestamp(value: Any) -> int | None:
    """ISO-8601 string or epoch seconds -> microseconds since epoch (UTC); None if unusable.

    Naive ISO timestamps are taken as UTC. Numeric strings are epoch seconds.
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, str):
        s = value.strip()
        if not s:
            return None
        try:
            return parse_timestamp(float(s))
        except ValueError:
            pass
        try:
            d = dt.datetime.fromisoformat(s)
        except ValueError:
            return None
        if d.tzinfo is None:
            d = d.replace(tzinfo=dt.timezone.utc)
        delta = d - _EPOCH
        return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    if isinstance(value, (int, float)):
        if not math.isfinite(value) or not (-2_208_988_800 <= value <= 7_258_118_400):
            return None  # outside 1900..2200: not a plausible epoch-seconds value
        return int(round(value * 1_000_000))
    return None


def _opt_str(obj: dict, key: str, warnings: list[str]) -> str | None:
    v = obj.get(key)
    if v is None:
        return None
    if isinstance(v, str):
        return v if _encodable(v) else _warn(warnings, f"{key}_not_utf8")
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return str(v)
    return _warn(warnings, f"{key}_not_string")


def _warn(warnings: list[str], w: str) -> None:
    warnings.append(w)
    return None


def _encodable(s: str) -> bool:
    try:
        s.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


def coerce_record(
    obj: Any, shard: str, line: int, fields: FieldsConfig, raw: Any, clip_chars: int
) -> tuple[dict | None, dict | None]:
    """Validates a decoded object. Returns (record, None) or (None, rejection)."""

    def reject(reason: str, detail: str):
        return None, rejection(shard, line, reason, detail, raw, clip_chars)

    if not isinstance(obj, dict):
        return reject("not_an_object", f"top-level JSON value is {type(obj).__name__}")
    if fields.text not in obj:
        return reject("missing_text", f"no '{fields.text}' field")
    text = obj[fields.text]
    if not isinstance(text, str):
        return reject("text_not_string", f"'{fields.text}' is {type(text).__name__}")
    if not text.strip():
        return reject("empty_text", "text is empty or whitespace only")
    if not _encodable(text):
        return reject("text_not_utf8", "text holds lone surrogates and cannot be encoded as UTF-8")

    warnings: list[str] = []
    rid = obj.get(fields.id)
    if rid is None:
        rid = auto_id(shard, line, text)
    elif isinstance(rid, bool) or not isinstance(rid, (str, int)):
        return reject("invalid_id", f"id is {type(rid).__name__}")
    else:
        rid = str(rid)
        if not rid.strip():
            return reject("invalid_id", "id is empty")
        if len(rid) > MAX_ID_CHARS:
            return reject("invalid_id", f"id longer than {MAX_ID_CHARS} chars")
        if not _encodable(rid):
            return reject("invalid_id", "id cannot be encoded as UTF-8")

    raw_ts = obj.get(fields.timestamp)
    ts = parse_timestamp(raw_ts)
    if raw_ts is not None and ts is None:
        warnings.append("timestamp_unparsed")

    meta = obj.get(fields.metadata)
    if meta is not None:
        try:
            meta = json.dumps(meta, ensure_ascii=False, sort_keys=True, allow_nan=False, default=str)
            if not _encodable(meta):
                meta = _warn(warnings, "metadata_not_utf8")
        except (ValueError, TypeError):
            meta = _warn(warnings, "metadata_not_serialisable")

    record = {
        "id": rid,
        "shard": shard,
        "line": line,
        "text": text,
        "source": _opt_str(obj, fields.source, warnings),
        "url": _opt_str(obj, fields.url, warnings),
        "timestamp": ts,
        "generator": _opt_str(obj, fields.generator, warnings),
        "metadata": meta,
        "input_warnings": warnings,
        "is_duplicate_id": False,
    }
    return record, None


def parse_line(
    raw: bytes, shard: str, line: int, fields: FieldsConfig, clip_chars: int
) -> tuple[dict | None, dict | None]:
    """One JSONL line (bytes, newline stripped) -> (record, None) or (None, rejection)."""
    if raw.endswith(b"\r"):
        raw = raw[:-1]
    try:
        s = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        return None, rejection(shard, line, "invalid_utf8", str(e), raw, clip_chars)
    if s.startswith(_BOM):
        s = s[1:]
    if not s.strip():
        return None, rejection(shard, line, "blank_line", "line holds no JSON value", s, clip_chars)
    try:
        obj = json.loads(s)
    except (ValueError, RecursionError) as e:
        return None, rejection(shard, line, "invalid_json", str(e), s, clip_chars)
    return coerce_record(obj, shard, line, fields, s, clip_chars)
