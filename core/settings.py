"""Config field helpers every step's config dataclass uses: a setting's constraints declared on
the field (`setting`: a `Range`, `choices`, `nonempty`, `below`), read by the one generic
checker in `pipeline/config.py`. The bottom layer: it imports nothing of ours."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


class ConfigError(ValueError):
    """A configuration value or key is invalid. The message says which and why, on one line."""


@dataclass(frozen=True)
class Range:
    """Closed bounds by default; `lo_open` / `hi_open` exclude an end."""

    lo: float
    hi: float
    lo_open: bool = False
    hi_open: bool = False

    def __contains__(self, x: float) -> bool:
        above = x > self.lo if self.lo_open else x >= self.lo
        below = x < self.hi if self.hi_open else x <= self.hi
        return above and below

    def __str__(self) -> str:
        return f"{'(' if self.lo_open else '['}{num(self.lo)}, {num(self.hi)}{')' if self.hi_open else ']'}"


def setting(default: Any = dataclasses.MISSING, *, factory: Any = dataclasses.MISSING,
            within: Range | None = None, choices: tuple = (), nonempty: bool = False,
            below: str | None = None):
    """A dataclass field with its constraints as metadata, read by `pipeline.config._check`.

    within: the numeric range (of each value, for a mapping of numbers); choices: the strings
    allowed; nonempty: refuse ""; below: the value must be smaller than that sibling field's.
    """
    meta = {"range": within, "choices": tuple(choices), "nonempty": nonempty, "below": below}
    return field(default=default, default_factory=factory,
                 metadata={k: v for k, v in meta.items() if v})


def num(x: float) -> str:
    return str(x) if isinstance(x, int) else f"{x:g}"


def name_setting(default: str):
    """An input field name: an empty one would look up a key no record has."""
    return setting(default, nonempty=True)
