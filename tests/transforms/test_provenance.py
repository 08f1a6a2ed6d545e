import datetime as dt

import apache_beam as beam
import pyarrow as pa
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from collapseguard.pipeline.config import FieldsConfig, ProvenanceConfig, from_dict
from collapseguard.transforms.provenance import AttestFn, ProvenanceRules, apply_detector, attest
from collapseguard.transforms.validate import coerce_record, parse_line, parse_timestamp

CFG = from_dict({"provenance": {"verified_sources": ["arXiv"], "trusted_archives": ["cc-2019"],
                                "known_synthetic_sources": ["chatlogs"], "cutoff": "2022-11-30"},
                 "stratify": {"anchor_fraction": 0.0}})
RULES = ProvenanceRules.from_config(CFG.provenance)


def rec(**kw):
    base = {"id": "x", "source": None, "timestamp": None, "generator": None}
    base.update(kw)
    return base


def test_allowlist_is_case_insensitive_and_keeps_reason():
    assert attest(rec(source="arxiv"), RULES) == ("verified_human", ["source_allowlist:arxiv"])


def test_trusted_archive_needs_timestamp_before_cutoff():
    before = parse_timestamp("2019-05-01")
    after = parse_timestamp("2023-05-01")
    assert attest(rec(source="cc-2019", timestamp=before), RULES) == (
        "verified_human", ["trusted_archive_before_cutoff:cc-2019"])
    assert attest(rec(source="cc-2019", timestamp=after), RULES)[0] == "unverified_human"
    assert attest(rec(source="cc-2019"), RULES)[0] == "unverified_human"
    assert attest(rec(source="elsewhere", timestamp=before), RULES)[0] == "unverified_human"


def test_synthetic_attestation_wins_and_keeps_both_reasons():
    label, reasons = attest(rec(source="arxiv", generator="gpt-4"), RULES)
    assert label == "known_synthetic"
    assert reasons == ["generator_field:gpt-4", "source_allowlist:arxiv"]
    assert attest(rec(source="ChatLogs"), RULES) == ("known_synthetic", ["known_synthetic_source:ChatLogs"])
    assert attest(rec(generator="  "), RULES)[0] == "unverified_human"


def test_detector_only_upgrades_unattested_records():
    assert apply_detector("unverified_human", [], 0.97, 0.81) == (
        "suspected_synthetic", ["detector:p=0.970>=0.810"])
    assert apply_detector("unverified_human", [], 0.5, 0.81) == ("unverified_human", [])
    assert apply_detector("verified_human", ["r"], 0.99, 0.81) == ("verified_human", ["r"])
    assert apply_detector("unverified_human", [], None, None) == ("unverified_human", [])


def test_attest_fn_in_pipeline():
    with TestPipeline() as p:
        recs = [dict(rec(id="a", source="arxiv"), _windows=[6.0]), dict(rec(id="b", generator="opt"), _windows=[5.0])]
        for i, r in enumerate(recs):
            r.update(shard_key="k", chunk_key="k.00000", shard="s", shard_index=0, line=i + 1)
        out = p | beam.Create(recs) | beam.ParDo(AttestFn(CFG)).with_outputs(
            AttestFn.VERIFIED_WINDOWS, main="records")
        assert_that(out.records | beam.Map(lambda kv: (kv[0], kv[1][0], kv[1][1]["id"], kv[1][1]["provenance"],
                                                         kv[1][1]["stratum"])),
                    equal_to([("k.00000", "record", "a", "verified_human", "human_verified"),
                              ("k.00000", "record", "b", "known_synthetic", "synthetic_known")]), label="records")
        assert_that(out.verified_windows, equal_to([[6.0]]), label="windows")


# --- attestation that cannot be dodged: records as validate.py builds them -------------------

F = FieldsConfig()


def validated(line: bytes) -> dict:
    record, rejection = parse_line(line, "s.jsonl", 1, F, 100)
    assert rejection is None
    return record


@pytest.mark.parametrize(
    "value, json_type",
    [(b'{"model": "gpt-4"}', "object"), (b"{}", "object"), (b'["gpt-4"]', "array"), (b"[]", "array"),
     (b"true", "boolean"), (b"false", "boolean"), (b'"gpt-\\ud800"', "string")],
)
def test_malformed_generator_is_known_synthetic_never_human(value, json_type):
    r = validated(b'{"text": "t", "source": "arxiv", "generator": ' + value + b"}")
    assert attest(r, RULES) == ("known_synthetic", [f"generator_field_malformed:{json_type}", "source_allowlist:arxiv"])
    assert attest(validated(b'{"text": "t", "generator": ' + value + b"}"), RULES) == (
        "known_synthetic", [f"generator_field_malformed:{json_type}"])


def test_malformed_is_read_from_the_warning_not_the_text():
    # a well-formed generator that happens to look like JSON is an ordinary attestation
    r = validated(b'{"text": "t", "generator": "{\\"model\\": \\"gpt-4\\"}"}')
    assert attest(r, RULES) == ("known_synthetic", ['generator_field:{"model": "gpt-4"}'])
    # and an empty kept text cannot hide a malformed one ("{}" is its canonical JSON anyway)
    assert attest(rec(generator="", input_warnings=["generator_malformed"], _malformed={"generator": "object"}),
                  RULES) == ("known_synthetic", ["generator_field_malformed:object"])


@pytest.mark.parametrize("value", [b'""', b'"  "', b"null", b'"\\t\\n"'])
def test_empty_or_null_generator_is_absent(value):
    r = validated(b'{"text": "t", "source": "arxiv", "generator": ' + value + b"}")
    assert attest(r, RULES) == ("verified_human", ["source_allowlist:arxiv"])
    assert attest(validated(b'{"text": "t", "generator": ' + value + b"}"), RULES) == ("unverified_human", [])


def test_numeric_generator_stays_an_attestation():
    assert attest(validated(b'{"text": "t", "generator": 4}'), RULES) == ("known_synthetic", ["generator_field:4"])


@pytest.mark.parametrize(
    "source, expected",
    [
        (b'["chatlogs"]', ("known_synthetic", ["known_synthetic_source:chatlogs"])),
        (b'["reddit", " ChatLogs "]', ("known_synthetic", ["known_synthetic_source:ChatLogs"])),
        (b'{"origin": {"name": "chatlogs"}}', ("known_synthetic", ["known_synthetic_source:chatlogs"])),
        (b'["chatlogs", "chatlogs", "arxiv"]', ("known_synthetic", ["known_synthetic_source:chatlogs"])),
        (b'["arxiv"]', ("unverified_human", [])),  # never verified through a malformed source
        (b'{"name": "arxiv"}', ("unverified_human", [])),
        (b"true", ("unverified_human", [])),
        (b'"arxiv\\udc00"', ("unverified_human", [])),
    ],
)
def test_malformed_source_cannot_dodge_the_synthetic_list_nor_earn_verified(source, expected):
    assert attest(validated(b'{"text": "t", "source": ' + source + b"}"), RULES) == expected


def test_malformed_source_is_never_a_trusted_archive():
    r = validated(b'{"text": "t", "source": ["cc-2019"], "timestamp": "2019-05-01"}')
    assert r["timestamp"] is not None and attest(r, RULES) == ("unverified_human", [])
    # even when its kept text is exactly a trusted archive's name (a string with no surrogate can't
    # be malformed; the warning alone decides)
    assert attest(rec(source="cc-2019", timestamp=r["timestamp"], input_warnings=["source_malformed"]),
                  RULES) == ("unverified_human", [])


ARCHIVE = ProvenanceRules.from_config(ProvenanceConfig(trusted_archives=("arch",), cutoff="2022-11-30"))


@pytest.mark.parametrize(
    "type_, value",
    [
        (pa.timestamp("us"), dt.datetime(2020, 1, 2, 3, 4, 5, 6)),
        (pa.timestamp("ns", tz="UTC"), dt.datetime(2020, 1, 2, 3, 4, 5, 6, tzinfo=dt.timezone.utc)),
        (pa.timestamp("s"), dt.datetime(2020, 1, 2, 3, 4, 5)),
        (pa.timestamp("ms", tz="America/New_York"), dt.datetime(2022, 11, 29, 23, 0)),
        (pa.date32(), dt.date(2022, 11, 29)),
    ],
)
def test_parquet_timestamps_let_a_trusted_archive_verify(type_, value):
    table = pa.table({"text": ["t", "t"], "source": ["arch", "arch"],
                      "timestamp": pa.array([value, dt.datetime(2023, 1, 1) if type_ != pa.date32() else
                                             dt.date(2023, 1, 1)], type_)})
    before, after = table.to_pylist()
    r, _ = coerce_record(before, "s.parquet", 1, F, before, 100)
    assert "timestamp_unparsed" not in r["input_warnings"]
    assert attest(r, ARCHIVE) == ("verified_human", ["trusted_archive_before_cutoff:arch"])
    r, _ = coerce_record(after, "s.parquet", 2, F, after, 100)
    assert r["timestamp"] is not None and attest(r, ARCHIVE) == ("unverified_human", [])
