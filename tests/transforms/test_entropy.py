import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from collapseguard.pipeline.config import EntropyConfig
from collapseguard.transforms.entropy import (
    WindowHistogram,
    audit_shard,
    entropy_floor,
    merge_window_summaries,
    summary_from_json,
    summary_to_json,
    window_summary,
    histogram_quantile,
    packed_windows,
    to_bin,
)


def hist(values):
    h = {}
    for v in values:
        h[to_bin(v)] = h.get(to_bin(v), 0) + 1
    return h


def test_histogram_quantile_is_a_low_quantile():
    values = [i / 100 for i in range(1, 1001)]  # 0.01 .. 10.0
    assert histogram_quantile(hist(values), 0.05) == pytest.approx(0.5, abs=0.011)
    assert histogram_quantile(hist(values), 0.5) == pytest.approx(5.0, abs=0.011)


def test_floor_sources():
    many = hist([6.0 + i / 1000 for i in range(500)])
    assert entropy_floor(EntropyConfig(floor="auto"), many)["floor_source"] == "calibrated"
    assert entropy_floor(EntropyConfig(floor="auto"), many)["floor_bits"] == pytest.approx(6.024, abs=0.002)
    few = entropy_floor(EntropyConfig(floor="auto", fallback_floor_bits=5.1), hist([6.0] * 10))
    assert few == {"floor_bits": 5.1, "floor_source": "fallback_too_few_windows", "calibration_windows": 10, "quantile": 0.05}
    assert entropy_floor(EntropyConfig(floor=4.5), {})["floor_bits"] == 4.5
    assert entropy_floor(EntropyConfig(floor="off"), many)["floor_bits"] is None


def test_audit_shard_decision_and_order_independence():
    vals = [6.1, 6.3, 5.0, 6.2, 6.4]
    a = audit_shard(window_summary(vals), 6.0)
    assert a["entropy_median_bits"] == 6.2 and a["below_floor"] is False and a["windows"] == 5
    assert a["entropy_mean_bits"] == 6.0
    assert audit_shard(window_summary(reversed(vals)), 6.0) == a
    assert audit_shard(window_summary(vals), 6.25)["below_floor"] is True
    assert audit_shard(window_summary([]), 6.0) == {"windows": 0, "entropy_median_bits": None,
                                                    "entropy_mean_bits": None, "below_floor": False, "audited": False}
    assert audit_shard(window_summary(vals), None)["audited"] is False
    # an even count: the mean of the two middle windows, to 0.001 bit
    assert audit_shard(window_summary([6.0, 6.1, 6.3, 7.0]), 6.0)["entropy_median_bits"] == pytest.approx(6.2, abs=0.001)


def test_a_shards_audit_is_the_same_however_it_is_chunked():
    vals = [5.0 + (i * 37 % 100) / 50 for i in range(1000)]
    whole = window_summary(vals)
    parts = [window_summary(vals[i:i + 70]) for i in range(0, 1000, 70)]
    assert merge_window_summaries(parts) == merge_window_summaries(parts[::-1]) == whole
    assert audit_shard(merge_window_summaries(parts), 6.0) == audit_shard(whole, 6.0)
    assert summary_from_json(summary_to_json(whole)) == whole
    assert len(whole["hist"]) <= 1000  # bounded by the bins, not by the windows


def test_packed_windows_cover_short_documents():
    tails = [" ".join(["a", "b"] * 10), " ".join(["c"] * 15), "", "d e f"]  # 38 tokens -> 3 windows
    assert len(packed_windows(tails, 10)) == 3


def test_window_histogram_combine_in_pipeline():
    with TestPipeline() as p:
        out = p | beam.Create([[1.0, 2.0], [1.0005], []]) | beam.CombineGlobally(WindowHistogram())
        assert_that(out, equal_to([{1000: 2, 2000: 1}]))
