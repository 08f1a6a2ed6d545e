"""Turn one raw input line (or Parquet row) into a clean record, or a rejection with a reason.

Pure functions: no Beam, no I/O. A rejection is a dict
``{"shard", "line", "reason", "detail", "raw"}``; every reason is a stable snake_case string
(the manifest counts them, tests assert them).

Attestation fields (`generator`, `source`) feed provenance, so a malformed one must never make
a record human:
- null, a string, or a number (kept as `str(v)`) is well formed. An empty or whitespace-only
  string is kept as is and means "absent" (many datasets write "" for human rows).
- anything else (object, array, true/false, a string with lone surrogates, any other type a
  Parquet row can hold) is malformed: the field keeps the raw value as bounded text
  (`attestation_text`: canonical JSON, or the string with its surrogates backslash-escaped),
  the record gets the input warning `<field>_malformed`, and `_malformed[field]` holds the
  value's JSON type name (`object`, `array`, `boolean`, `string`, ...) for provenance's reason.
  A malformed `source` that holds strings (array elements, object values, at any depth) also
  lists them in `_source_strings`, so a known-synthetic name inside it is still found.
  Provenance reads the warning, never the text (transforms/provenance.py).

Ids compare as text: the integer 7 and the string "7" are the same id (an integer id is kept as
its decimal string and gets the input warning `id_was_integer`, so a collision is explainable).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any

from collapseguard.core.settings import name_setting


@dataclass(frozen=True)
class FieldsConfig:
    """Names of the input fields (so shards with other schemas need no rewrite)."""

    text: str = name_setting("text")
    id: str = name_setting("id")
    source: str = name_setting("source")
    url: str = name_setting("url")
    timestamp: str = name_setting("timestamp")
    generator: str = name_setting("generator")
    metadata: str = name_setting("metadata")

MAX_ID_CHARS = 512
MAX_ATTESTATION_CHARS = 500
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


def _micros(d: dt.datetime) -> int:
    if d.tzinfo is None:
        d = d.replace(tzinfo=dt.timezone.utc)
    delta = d - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def parse_timestamp(value: Any) -> int | None:
    """A timestamp -> microseconds since epoch (UTC); None if unusable.

    Accepted: ISO-8601 strings, epoch seconds (numbers or numeric strings, 1900..2200), and the
    objects a Parquet row holds after pyarrow's `to_pylist()`: `datetime.datetime`,
    `datetime.date` (date32/date64 columns: midnight UTC), pandas Timestamps (anything with
    `to_pydatetime()`) and numpy datetime64. Naive timestamps are taken as UTC.
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
            return _micros(dt.datetime.fromisoformat(s))
        except ValueError:
            return None
    if isinstance(value, (int, float)):
        if not math.isfinite(value) or not (-2_208_988_800 <= value <= 7_258_118_400):
            return None  # outside 1900..2200: not a plausible epoch-seconds value
        return int(round(value * 1_000_000))
    if getattr(getattr(value, "dtype", None), "kind", None) == "M" and getattr(value, "shape", None) == ():
        if value != value:  # numpy datetime64 NaT
            return None
        value = value.astype("datetime64[us]").item()  # datetime.datetime; an int if out of range
    if hasattr(value, "to_pydatetime") and type(value) is not dt.datetime:  # pandas Timestamp
        try:
            value = value.to_pydatetime()
        except (ValueError, TypeError, OverflowError):
            return None
    if isinstance(value, dt.datetime):
        if value != value:  # pandas NaT
            return None
        try:
            return _micros(value)
        except (ValueError, TypeError, OverflowError, AttributeError):  # a broken tzinfo
            return None
    if isinstance(value, dt.date):
        return _micros(dt.datetime(value.year, value.month, value.day))
    return None


def json_type(v: Any) -> str:
    """The JSON type name of a decoded value; a Python type name for what JSON can't hold."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, dict):
        return "object"
    if isinstance(v, (list, tuple)):
        return "array"
    return type(v).__name__


def attestation_text(v: Any) -> str:
    """A malformed field's raw value as bounded UTF-8-safe text: canonical JSON for
    non-strings, the string itself for strings, lone surrogates backslash-escaped."""
    if isinstance(v, str):
        s = v
    else:
        try:
            s = json.dumps(v, sort_keys=True, ensure_ascii=False, default=str)
        except (ValueError, TypeError, RecursionError):
            s = f"<unserialisable {type(v).__name__}>"
    s = s.encode("utf-8", "backslashreplace").decode("utf-8")
    return clip(s, MAX_ATTESTATION_CHARS)


def string_leaves(v: Any) -> list[str]:
    """Every UTF-8-encodable string inside an array/object (elements and values, any depth,
    object keys excluded), in document order, each once."""
    out: dict[str, None] = {}
    stack = [v]
    while stack:
        x = stack.pop()
        if isinstance(x, str):
            if _encodable(x):
                out.setdefault(x)
        elif isinstance(x, dict):
            stack.extend(reversed(list(x.values())))
        elif isinstance(x, (list, tuple)):
            stack.extend(reversed(x))
    return list(out)


def _attestation(obj: dict, key: str, field: str, warnings: list[str], malformed: dict) -> str | None:
    """An attestation field (`generator`, `source`): see the module docstring."""
    v = obj.get(key)
    if v is None:
        return None
    if isinstance(v, str) and _encodable(v):
        return v
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return str(v)
    warnings.append(f"{field}_malformed")
    malformed[field] = json_type(v)
    return attestation_text(v)


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
        if isinstance(rid, int):
            warnings.append("id_was_integer")
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

    malformed: dict[str, str] = {}
    record = {
        "id": rid,
        "shard": shard,
        "line": line,
        "text": text,
        "source": _attestation(obj, fields.source, "source", warnings, malformed),
        "url": _opt_str(obj, fields.url, warnings),
        "timestamp": ts,
        "generator": _attestation(obj, fields.generator, "generator", warnings, malformed),
        "metadata": meta,
        "input_warnings": warnings,
        "is_duplicate_id": False,
    }
    if malformed:  # internal keys (not in the output schema): provenance's evidence
        record["_malformed"] = malformed
        if isinstance(obj.get(fields.source), (dict, list, tuple)):
            record["_source_strings"] = string_leaves(obj[fields.source])
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
