import json

import pytest

from collapseguard.pipeline.config import FieldsConfig
from collapseguard.transforms.validate import auto_id, parse_line, parse_timestamp

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
    assert rec["timestamp"] == parse_timestamp("2020-01-02T03:04:05+00:00")
    assert json.loads(rec["metadata"]) == {"a": [1], "b": 1}
    assert rec["metadata"] == '{"a": [1], "b": 1}'  # canonical
    assert rec["input_warnings"] == [] and rec["is_duplicate_id"] is False


def test_missing_id_gets_deterministic_id():
    a, _ = parse(b'{"text": "same"}')
    b, _ = parse(b'{"text": "same"}')
    c, _ = parse_line(b'{"text": "same"}', "shard.jsonl", 8, F, 100)
    assert a["id"] == b["id"] == auto_id("shard.jsonl", 7, "same")
    assert c["id"] != a["id"]


def test_bad_optional_fields_warn_not_reject():
    rec, _ = parse(b'{"text": "t", "timestamp": "yesterday", "source": {"x": 1}}')
    assert rec["timestamp"] is None and rec["source"] is None
    assert rec["input_warnings"] == ["timestamp_unparsed", "source_not_string"]


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
