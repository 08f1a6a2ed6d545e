import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from collapseguard.pipeline.config import FieldsConfig
from collapseguard.transforms.dedup import duplicate_losers, id_location
from collapseguard.transforms.plan import plan_chunk, summarize_chunk
from collapseguard.transforms.validate import parse_line


def r(id_, idx, line):
    return {"id": id_, "shard_index": idx, "line": line, "chunk_key": f"k{idx}", "shard": f"s{idx}"}


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


# --- ids compare as text: integer 7 and string "7" are one id, and the rejection says so

def validated(line: bytes, shard: str, index: int) -> dict:
    rec, _ = parse_line(line, shard, 1, FieldsConfig(), 100)
    rec.update(shard_index=index, chunk_key=f"k{index}", stratum="human_unverified", _windows=[6.0], _tail="")
    return rec


def rejected_duplicate(first_line: bytes, second_line: bytes) -> tuple[dict, dict]:
    first, second = validated(first_line, "a.jsonl", 0), validated(second_line, "b.jsonl", 1)
    groups: dict = {}
    for rid, loc in map(id_location, (first, second)):
        groups.setdefault(rid, []).append(loc)
    losers = [loser for item in groups.items() for loser in duplicate_losers(item)]
    assert losers == [("k1", ("duplicate", (1, "a.jsonl:1")))]
    from collapseguard.transforms.weights import WeightsConfig

    status = {"shard": "b.jsonl", "shard_key": "s1", "chunk_key": "k1", "records_read": 1, "error": None}
    dups = [losers[0][1][1]]
    summary = summarize_chunk([second], dups, "reject", 10, WeightsConfig(), None)
    planned = plan_chunk([second], [], dups, status, "reject", 100, summary)
    assert [r["reason"] for r in planned.rejected] == ["duplicate_id"]
    return second, planned.rejected[0]


@pytest.mark.parametrize("first, second", [(b"7", b'"7"'), (b'"7"', b"7"), (b"-3", b'"-3"'), (b"7", b"7")])
def test_integer_and_string_ids_collide_and_the_detail_says_why(first, second):
    loser, rej = rejected_duplicate(b'{"text": "t", "id": ' + first + b"}", b'{"text": "u", "id": ' + second + b"}")
    assert ("id_was_integer" in loser["input_warnings"]) == (not second.startswith(b'"'))
    assert rej["detail"] == f"id {loser['id']!r} first seen at a.jsonl:1; ids compare as text, so 7 and \"7\" are one id"


def test_textual_duplicate_detail_has_no_note():
    _, rej = rejected_duplicate(b'{"text": "t", "id": "x7"}', b'{"text": "u", "id": "x7"}')
    assert rej["detail"] == "id 'x7' first seen at a.jsonl:1"
