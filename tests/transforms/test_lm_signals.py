"""ScoreWithLM: deterministic sampling, no record ever lost, and the real model in a
multi-process DirectRunner with one shared model copy."""

from __future__ import annotations

import glob
import hashlib
import json

import apache_beam as beam
import pytest
from apache_beam.ml.inference.base import ModelHandler
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from collapseguard.models.causal_lm import LM_COLUMNS
from collapseguard.transforms.lm_signals import (
    SAMPLE_SALT,
    ScoreWithLM,
    lm_selected,
    not_scored,
    records_of_failed_batch,
    sample_fraction,
)

TEXT = ("The river rose slowly through the night, and by morning the low fields beside the "
        "mill were under water. Farmers moved their sheep to the hill and waited for the rain to stop.")


class FailingHandler(ModelHandler):
    """Loads fine, fails every batch: stands in for an out-of-memory or a crashed model."""

    def load_model(self):
        return FailingHandler  # any weak-referenceable object; Beam caches it per process

    def run_inference(self, batch, model, inference_args=None):
        raise RuntimeError("simulated inference failure")


def test_sampling_is_a_stable_hash_of_the_id():
    expected = int.from_bytes(hashlib.sha256(f"{SAMPLE_SALT}\x00doc-1".encode()).digest()[:8], "big")
    assert sample_fraction("doc-1") == expected / 2**64
    ids = [f"doc-{i}" for i in range(4000)]
    picked = [lm_selected({"id": i}, 0.25) for i in ids]
    assert picked == [lm_selected({"id": i}, 0.25) for i in ids]
    assert 0.22 < sum(picked) / len(ids) < 0.28
    assert all(lm_selected({"id": i}, 1.0) for i in ids[:50])
    # a smaller rate selects a subset of a larger one, so raising it only adds documents
    assert all(lm_selected({"id": i}, 0.5) for i, p in zip(ids, picked) if p)
    assert picked != [lm_selected({"id": i}, 0.25, salt="other") for i in ids]


def test_sample_rate_and_options_are_validated_when_built():
    for bad in (0, -0.1, 1.5, "0.5"):
        with pytest.raises(ValueError, match="sample_rate"):
            ScoreWithLM(sample_rate=bad)
    with pytest.raises(ValueError, match="unknown device"):
        ScoreWithLM(device="gpu")


def test_pure_record_helpers():
    rec = {"id": "a", "text": "t", "source": "s"}
    assert not_scored(rec) == {**rec, **{k: None for k in LM_COLUMNS}}
    out = records_of_failed_batch(([rec, {"id": "b", "text": "u"}], (MemoryError, "MemoryError()", [])))
    assert [r["id"] for r in out] == ["a", "b"]
    assert out[0]["lm_error"] == "inference failed: MemoryError: MemoryError()"
    assert out[0]["lm_mean_logprob"] is None and rec.keys() == {"id", "text", "source"}


def test_failed_batches_keep_their_records_and_unsampled_records_pass_untouched():
    records = [{"id": f"doc-{i}", "text": f"text {i}", "n": i} for i in range(40)]
    rate = 0.5
    selected = {r["id"] for r in records if lm_selected(r, rate)}
    assert 0 < len(selected) < len(records)

    def summary(r):
        return r["id"], r["n"], r["lm_tokens"], r["lm_error"] is not None

    expected = [(r["id"], r["n"], None, r["id"] in selected) for r in records]
    with TestPipeline() as p:
        out = (p | beam.Create(records)
               | ScoreWithLM(sample_rate=rate, model_handler=FailingHandler())
               | beam.Map(summary))
        assert_that(out, equal_to(expected))


@pytest.mark.slow
def test_real_model_in_multiprocess_direct_runner_with_a_shared_copy(tmp_path):
    records = [{"id": f"doc-{i}", "text": TEXT[: 40 + 30 * i], "shard": "s0"} for i in range(6)]
    records += [{"id": "short", "text": "Hi"}, {"id": "bad", "text": None}]
    rate = 0.9
    selected = {r["id"] for r in records if lm_selected(r, rate)}
    assert selected == {r["id"] for r in records} - {"doc-3"}  # pinned by the hash

    options = PipelineOptions(["--direct_running_mode=multi_processing", "--direct_num_workers=2"])
    with beam.Pipeline(options=options) as p:
        _ = (p | beam.Create(records, reshuffle=True)
             | ScoreWithLM(sample_rate=rate, max_tokens=64, share_across_processes=True,
                           stats_kernel="eager")
             | beam.Map(json.dumps)
             | beam.io.WriteToText(str(tmp_path / "out"), file_name_suffix=".jsonl"))

    rows = [json.loads(line) for f in glob.glob(str(tmp_path / "out*.jsonl")) for line in open(f)]
    got = {r["id"]: r for r in rows}
    assert sorted(got) == sorted(r["id"] for r in records) and len(rows) == len(records)
    assert all(set(LM_COLUMNS) <= set(r) for r in rows)
    assert all(got["doc-3"][c] is None for c in LM_COLUMNS)  # not sampled: passes untouched
    for i in (0, 1, 2, 4, 5):
        r = got[f"doc-{i}"]
        assert r["lm_error"] is None and r["lm_tokens"] >= 5 and r["shard"] == "s0"
        assert -10 < r["lm_mean_logprob"] < 0 and r["lm_mean_entropy"] > 0
        assert isinstance(r["lm_fdg_curvature"], float)
    assert got["short"]["lm_tokens"] == 0 and got["short"]["lm_mean_logprob"] is None
    assert got["bad"]["lm_error"] and got["bad"]["lm_tokens"] is None
