"""`Curate` inside a user's own pipeline: in-memory records in, strata, rejected and a summary out."""

import apache_beam as beam
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

import collapseguard
from collapseguard.pipeline import config as config_mod
from fixtures_data import HUMAN

SPAM = "buy cheap pills now " * 40


def records():
    rows = [{"id": f"h{i}", "text": f"{HUMAN[i % 2]} Item {i}.", "source": "arxiv"} for i in range(30)]
    rows += [{"id": f"u{i}", "text": f"{HUMAN[(i + 1) % 2]} Note {i}.", "source": "web"} for i in range(20)]
    rows += [{"id": f"g{i}", "text": f"{HUMAN[i % 2]} Gen {i}.", "generator": "gpt-4o"} for i in range(10)]
    rows += [{"id": "h3", "text": "a second document with a taken id", "source": "web"},  # duplicate id
             {"id": "empty", "text": ""},                                                   # rejected
             {"text": 42}]                                                                  # rejected
    return rows


def test_curate_in_a_users_test_pipeline():
    cfg = config_mod.from_dict({"provenance": {"verified_sources": ["arxiv"]}, "read": {"chunk_documents": 7},
                                "entropy": {"floor": 3.0}})
    with TestPipeline() as p:
        out = p | beam.Create(records()) | collapseguard.Curate(cfg)
        training = (out["human_verified"], out["anchor"]) | "Verified" >> beam.Flatten()
        assert_that(training | "VIds" >> beam.Map(lambda r: r["id"]),
                    equal_to([f"h{i}" for i in range(30)]), label="verified")
        assert_that(out["human_unverified"] | "UIds" >> beam.Map(lambda r: r["id"]),
                    equal_to([f"u{i}" for i in range(20)]), label="unverified")
        assert_that(out["synthetic_known"] | "SIds" >> beam.Map(lambda r: (r["id"], r["provenance"])),
                    equal_to([(f"g{i}", "known_synthetic") for i in range(10)]), label="synthetic")
        assert_that(out["rejected"] | "Reasons" >> beam.Map(lambda r: r["reason"]),
                    equal_to(["duplicate_id", "empty_text", "text_not_string"]), label="rejected")

        def check(summary):
            assert summary["records_read"] == 63 and summary["conserved"]
            assert summary["records_rejected"] == 3
            assert summary["largest_element"]["documents"] <= 20  # ~7 per chunk, by hash
            assert summary["chunks_total"] >= 5
            assert summary["mixture"]["synthetic_weight"] <= 1.0
            return True

        assert_that(out["summary"] | beam.Map(check), equal_to([True]), label="summary")


def test_curate_gives_the_same_rows_whatever_the_input_order(tmp_path):
    cfg = config_mod.from_dict({"read": {"chunk_documents": 5}})

    def run(rows, name):
        with TestPipeline() as p:
            out = p | beam.Create(rows) | collapseguard.Curate(cfg)
            (tuple(out[k] for k in ("human_unverified", "synthetic_known", "rejected")) | beam.Flatten()
             | beam.Map(lambda r: repr(sorted(r.items())))
             | beam.io.WriteToText(str(tmp_path / name), shard_name_template=""))
        return sorted(open(tmp_path / name, encoding="utf-8").read().splitlines())

    rows = records()
    first = run(rows, "a")
    assert len(first) == 63 and first == run(rows[::-1], "b")  # no verified source: all unattested
