import json

import pytest

from collapseguard.pipeline.config import FieldsConfig
from collapseguard.transforms.validate import MAX_ATTESTATION_CHARS, auto_id, coerce_record, parse_line, parse_timestamp

F = FieldsConfig()


def parse(raw: bytes, fields=F):
    return parse_line(raw, "shard.jsonl", 7, fields, 100)


@pytest.mark.parametrize(
    "raw, reason",
    [
        (b'{"text": "unterminated', "invalid_json"),
        (b'{"text": "caf\xe9"}', "invalid_utf8"),
        (b"[1, 2]", "not_an_object"),
        (b'{"body": "x"}', "missing_text"),
        (b'{"text": 3}', "text_not_string"),
        (b'{"text": null}', "text_not_string"),
        (b'{"text": " \\n\\t "}', "empty_text"),
        (b'{"text": "a \\ud800 b"}', "text_not_utf8"),
        (b'{"text": "x", "id": [1]}', "invalid_id"),
        (b'{"text": "x", "id": true}', "invalid_id"),
        (b'{"text": "x", "id": ""}', "invalid_id"),
        (b"   ", "blank_line"),
    ],
)
def test_rejections_carry_reason_line_and_clipped_raw(raw, reason):
    rec, rej = parse(raw)
    assert rec is None
    assert rej["reason"] == reason
    assert rej["shard"] == "shard.jsonl" and rej["line"] == 7
    assert isinstance(rej["raw"], str) and len(rej["raw"]) <= 100 + 40


def test_raw_is_clipped():
    _, rej = parse(b'{"text": "' + b"y" * 10_000)
    assert rej["reason"] == "invalid_json"
    assert len(rej["raw"]) < 200 and "clipped" in rej["raw"]


def test_valid_record_fields_and_bom_crlf():
    raw = '\ufeff{"id": 5, "text": "Hello", "source": "arxiv", "url": "u", "timestamp": "2020-01-02T03:04:05Z", "generator": null, "metadata": {"b": 1, "a": [1]}}\r'
    rec, rej = parse(raw.encode())
    assert rej is None
    assert rec["id"] == "5" and rec["text"] == "Hello" and rec["source"] == "arxiv"
    assert rec["input_warnings"] == ["id_was_integer"]
    assert rec["timestamp"] == parse_timestamp("2020-01-02T03:04:05+00:00")
    assert json.loads(rec["metadata"]) == {"a": [1], "b": 1}
    assert rec["metadata"] == '{"a": [1], "b": 1}'  # canonical
    assert rec["is_duplicate_id"] is False and "_malformed" not in rec


def test_missing_id_gets_deterministic_id():
    a, _ = parse(b'{"text": "same"}')
    b, _ = parse(b'{"text": "same"}')
    c, _ = parse_line(b'{"text": "same"}', "shard.jsonl", 8, F, 100)
    assert a["id"] == b["id"] == auto_id("shard.jsonl", 7, "same")
    assert c["id"] != a["id"]


def test_bad_optional_fields_warn_not_reject():
    rec, _ = parse(b'{"text": "t", "timestamp": "yesterday", "url": {"x": 1}}')
    assert rec["timestamp"] is None and rec["url"] is None
    assert rec["input_warnings"] == ["timestamp_unparsed", "url_not_string"]


def test_configurable_field_names():
    fields = FieldsConfig(text="content", id="doc_id")
    rec, _ = parse(b'{"content": "body", "doc_id": "d1"}', fields)
    assert rec["text"] == "body" and rec["id"] == "d1"


@pytest.mark.parametrize(
    "value, expected",
    [
        ("1970-01-01T00:00:01Z", 1_000_000),
        ("1970-01-01", 0),
        (1.5, 1_500_000),
        ("86400", 86_400_000_000),
        ("nope", None),
        (True, None),
        (1e20, None),
        (None, None),
    ],
)
def test_parse_timestamp(value, expected):
    assert parse_timestamp(value) == expected


# --- attestation fields: malformed is kept and flagged, never dropped -----------------------


@pytest.mark.parametrize(
    "raw_value, kept, json_type",
    [
        (b'{"model": "gpt-4", "t": 0.7}', '{"model": "gpt-4", "t": 0.7}', "object"),
        (b'{}', "{}", "object"),
        (b'["gpt-4", "llama"]', '["gpt-4", "llama"]', "array"),
        (b'[]', "[]", "array"),
        (b"true", "true", "boolean"),
        (b"false", "false", "boolean"),
        (b'"gpt\\ud800-4"', "gpt\\ud800-4", "string"),
        (b'{"b": "\\udfff", "a": "\u00e9"}', '{"a": "\u00e9", "b": "\\udfff"}', "object"),
    ],
)
def test_malformed_generator_keeps_raw_value_and_warns(raw_value, kept, json_type):
    rec, rej = parse(b'{"text": "t", "generator": ' + raw_value + b"}")
    assert rej is None
    assert rec["generator"] == kept
    assert rec["generator"].encode("utf-8")  # writable: lone surrogates are escaped
    assert rec["input_warnings"] == ["generator_malformed"]
    assert rec["_malformed"] == {"generator": json_type}


@pytest.mark.parametrize("raw_value, kept", [(b'""', ""), (b'"   "', "   "), (b"null", None), (b"3", "3"), (b"2.5", "2.5"),
                                             (b'"gpt-4"', "gpt-4")])
def test_well_formed_or_absent_generator_is_not_malformed(raw_value, kept):
    rec, _ = parse(b'{"text": "t", "generator": ' + raw_value + b"}")
    assert rec["generator"] == kept and rec["input_warnings"] == [] and "_malformed" not in rec


def test_malformed_generator_text_is_bounded():
    rec, _ = parse(json.dumps({"text": "t", "generator": {"k": "v" * 10_000}}).encode())
    assert len(rec["generator"]) < MAX_ATTESTATION_CHARS + 40 and "clipped" in rec["generator"]
    assert rec["_malformed"] == {"generator": "object"}


def test_generator_from_a_parquet_row_of_other_types():
    rec, _ = coerce_record({"text": "t", "generator": b"gpt-4"}, "s.parquet", 1, F, None, 100)
    assert rec["input_warnings"] == ["generator_malformed"] and rec["_malformed"] == {"generator": "bytes"}
    assert rec["generator"] == '"b\'gpt-4\'"'  # default=str, then JSON


@pytest.mark.parametrize(
    "raw_value, kept, json_type, strings",
    [
        (b'["reddit", "chatlogs"]', '["reddit", "chatlogs"]', "array", ["reddit", "chatlogs"]),
        (b'{"name": "chatlogs", "via": ["x", {"y": "z"}]}', '{"name": "chatlogs", "via": ["x", {"y": "z"}]}', "object",
         ["chatlogs", "x", "z"]),
        (b'["a", "a", 3, null, "\\ud800"]', '["a", "a", 3, null, "\\ud800"]', "array", ["a"]),
        (b"true", "true", "boolean", None),
        (b'"arxiv\\udc00"', "arxiv\\udc00", "string", None),
    ],
)
def test_malformed_source_keeps_raw_value_and_its_strings(raw_value, kept, json_type, strings):
    rec, _ = parse(b'{"text": "t", "source": ' + raw_value + b"}")
    assert rec["source"] == kept and rec["input_warnings"] == ["source_malformed"]
    assert rec["_malformed"] == {"source": json_type}
    assert rec.get("_source_strings") == strings


# --- ids compare as text ---------------------------------------------------------------------


@pytest.mark.parametrize("raw_id, rid, warnings", [(b"7", "7", ["id_was_integer"]), (b'"7"', "7", []),
                                                   (b"-12", "-12", ["id_was_integer"]), (b'"007"', "007", [])])
def test_integer_id_is_its_decimal_text_and_says_so(raw_id, rid, warnings):
    rec, _ = parse(b'{"text": "t", "id": ' + raw_id + b"}")
    assert rec["id"] == rid and rec["input_warnings"] == warnings


def test_integer_id_from_a_parquet_row_warns():
    import pyarrow as pa

    row = pa.table({"id": pa.array([7], pa.int64()), "text": ["t"]}).to_pylist()[0]
    rec, _ = coerce_record(row, "s.parquet", 1, F, row, 100)
    assert rec["id"] == "7" and rec["input_warnings"] == ["id_was_integer"]


# --- Parquet timestamps ------------------------------------------------------------------------


def _pylist(values, type_):
    import pyarrow as pa

    return pa.table({"ts": pa.array(values, type_)}).to_pylist()


def test_native_datetimes_parse_like_iso_strings():
    import datetime as dt

    utc = dt.timezone.utc
    iso = parse_timestamp("2019-05-01T12:30:00.000123+00:00")
    assert parse_timestamp(dt.datetime(2019, 5, 1, 12, 30, 0, 123, tzinfo=utc)) == iso
    assert parse_timestamp(dt.datetime(2019, 5, 1, 12, 30, 0, 123)) == iso  # naive = UTC
    plus2 = dt.timezone(dt.timedelta(hours=2))
    assert parse_timestamp(dt.datetime(2019, 5, 1, 14, 30, 0, 123, tzinfo=plus2)) == iso
    assert parse_timestamp(dt.date(2019, 5, 1)) == parse_timestamp("2019-05-01")
    assert parse_timestamp(dt.time(12, 30)) is None


def test_numpy_datetime64_and_to_pydatetime_objects():
    import datetime as dt

    import numpy as np

    assert parse_timestamp(np.datetime64("2019-05-01T12:30:00.000123")) == parse_timestamp("2019-05-01T12:30:00.000123")
    assert parse_timestamp(np.datetime64("2019-05-01T12:30:00.000123456", "ns")) == parse_timestamp(
        "2019-05-01T12:30:00.000123")
    assert parse_timestamp(np.datetime64("NaT")) is None

    class FakePandasTimestamp:  # pandas.Timestamp's conversion method, without pandas
        def to_pydatetime(self):
            return dt.datetime(2019, 5, 1, tzinfo=dt.timezone.utc)

    assert parse_timestamp(FakePandasTimestamp()) == parse_timestamp("2019-05-01")


@pytest.mark.parametrize(
    "type_args, value, iso",
    [
        (("timestamp", "us"), "2019-05-01T12:30:00.000123", "2019-05-01T12:30:00.000123+00:00"),
        (("timestamp", "ns", "UTC"), "2019-05-01T12:30:00.000123", "2019-05-01T12:30:00.000123+00:00"),
        (("timestamp", "s"), "2019-05-01T12:30:00", "2019-05-01T12:30:00+00:00"),
        (("timestamp", "ms", "Europe/Paris"), "2019-05-01T12:30:00", "2019-05-01T12:30:00+00:00"),
        (("date32",), "2019-05-01", "2019-05-01T00:00:00+00:00"),
    ],
)
def test_parquet_timestamp_columns_through_coerce_record(type_args, value, iso):
    import datetime as dt

    import pyarrow as pa

    kind, *args = type_args
    type_ = pa.date32() if kind == "date32" else pa.timestamp(args[0], tz=args[1] if len(args) > 1 else None)
    py = dt.date.fromisoformat(value) if kind == "date32" else dt.datetime.fromisoformat(value)
    table = pa.table({"id": ["d1", "d2"], "text": ["t", "t"], "timestamp": pa.array([py, None], type_)})
    rows = table.to_pylist()
    assert not isinstance(rows[0]["timestamp"], str)  # a native object, as read.py sees it
    rec, _ = coerce_record(rows[0], "s.parquet", 1, F, rows[0], 100)
    assert rec["timestamp"] == parse_timestamp(iso) and rec["input_warnings"] == []
    empty, _ = coerce_record(rows[1], "s.parquet", 2, F, rows[1], 100)
    assert empty["timestamp"] is None and empty["input_warnings"] == []
