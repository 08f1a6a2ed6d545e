import apache_beam as beam
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from collapseguard.pipeline.config import from_dict
from collapseguard.transforms.provenance import AttestFn, ProvenanceRules, apply_detector, attest
from collapseguard.transforms.validate import parse_timestamp

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
            r.update(shard_key="k", shard="s", shard_index=0, line=i + 1)
        out = p | beam.Create(recs) | beam.ParDo(AttestFn(CFG)).with_outputs(
            AttestFn.VERIFIED_WINDOWS, main="records")
        assert_that(out.records | beam.Map(lambda kv: (kv[0], kv[1][0], kv[1][1]["id"], kv[1][1]["provenance"],
                                                         kv[1][1]["stratum"])),
                    equal_to([("k", "record", "a", "verified_human", "human_verified"),
                              ("k", "record", "b", "known_synthetic", "synthetic_known")]), label="records")
        assert_that(out.verified_windows, equal_to([[6.0]]), label="windows")
