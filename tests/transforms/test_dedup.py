import apache_beam as beam
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from collapseguard.transforms.dedup import duplicate_losers, id_location


def r(id_, idx, line):
    return {"id": id_, "shard_index": idx, "line": line, "shard_key": f"k{idx}", "shard": f"s{idx}"}


def test_first_by_shard_then_line_wins():
    locs = [(1, 2, "k1", "s1"), (0, 9, "k0", "s0"), (1, 1, "k1", "s1")]
    assert duplicate_losers(("x", locs)) == [("k1", ("duplicate", (1, "s0:9"))), ("k1", ("duplicate", (2, "s0:9")))]
    assert duplicate_losers(("y", [(0, 1, "k0", "s0")])) == []


def test_duplicates_in_pipeline():
    records = [r("a", 0, 1), r("b", 0, 2), r("a", 1, 1), r("a", 0, 5)]
    with TestPipeline() as p:
        out = (p | beam.Create(records) | beam.Map(id_location) | beam.GroupByKey()
               | beam.FlatMap(duplicate_losers))
        assert_that(out, equal_to([("k0", ("duplicate", (5, "s0:1"))), ("k1", ("duplicate", (1, "s0:1")))]))
