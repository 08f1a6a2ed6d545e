"""Duplicate ids across the whole input: the first occurrence wins, the rest are marked.

"First" is the lowest (shard index, line) in the sorted shard list, so the choice is the same
on every run and runner. Only (id, location) pairs are shuffled, never texts.
"""

from __future__ import annotations

from typing import Iterable


def id_location(record: dict) -> tuple[str, tuple[int, int, str, str]]:
    return record["id"], (record["shard_index"], record["line"], record["chunk_key"], record["shard"])


def duplicate_losers(
    item: tuple[str, Iterable[tuple[int, int, str, str]]],
) -> list[tuple[str, tuple[str, tuple[int, str]]]]:
    """(id, locations) -> [(chunk_key, ("duplicate", (line, 'first_shard:first_line')))]
    for every location but the first: delivered to the chunk that holds the loser."""
    _id, locations = item
    locs = sorted(locations)
    if len(locs) < 2:
        return []
    first = f"{locs[0][3]}:{locs[0][1]}"
    return [(key, ("duplicate", (line, first))) for _idx, line, key, _name in locs[1:]]
