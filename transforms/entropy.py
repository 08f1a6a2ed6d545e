"""Shard entropy audit: does a shard's text carry as much lexical variety as human text?

Unit of measure: the Miller-Madow unigram entropy of fixed-size token windows
(`signals.window_entropy_bits`). Because every window has the same N tokens, the figure does
not grow with shard or document size (the plug-in entropy of a whole shard does).

- Shard figure: the median window entropy of the shard (robust to a few odd documents), to
  0.001 bit. The shard's windows are each document's full windows plus windows packed, in line
  order within each chunk, from the leftover tokens (the tail of each document, all of a short
  one), so a shard of short documents is audited too. Each chunk contributes an integer
  histogram of its windows (`window_summary`); a shard's are combined per shard key, so the
  audit never needs the shard's documents in one place.
- Floor: from config (absolute bits), or calibrated in-run as a low quantile (default 5%) of
  the windows of verified-human documents. With fewer calibration windows than
  `min_calibration_windows` the configured fallback floor is used, and the manifest says so.
- A shard whose median is under the floor is held: its documents go to review/.

Calibration windows are counted in a histogram of 0.001-bit bins: integer counts merge in any
order, so the floor is identical on every runner (float sums are not).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable

import apache_beam as beam

from collapseguard.core.settings import Range, setting
from collapseguard.transforms.base import merge_histograms
from collapseguard.transforms.signals import window_entropy_bits, windows


# Window entropy in bits: log2 of the window size bounds it (log2(10_000) is about 13.3).
_BITS = Range(0.0, 20.0)


@dataclass(frozen=True)
class EntropyConfig:
    # "auto": calibrate in-run from verified-human windows; a number: absolute floor in bits;
    # "off": no audit.
    floor: str | float = setting("auto", choices=("auto", "off"), within=_BITS)
    quantile: float = setting(0.05, within=Range(0.0, 0.5, lo_open=True, hi_open=True))
    min_calibration_windows: int = setting(200, within=Range(1, 1_000_000_000))
    # just under the 1% quantile of human windows in labeled-dev (5.76-6.06)
    fallback_floor_bits: float = setting(5.5, within=Range(0.0, 20.0, lo_open=True))

BIN_BITS = 0.001


def to_bin(bits: float) -> int:
    return int(math.floor(bits / BIN_BITS))


def histogram_quantile(hist: dict[int, int], q: float) -> float:
    """Lower edge of the bin holding the q-quantile of the counted values."""
    total = sum(hist.values())
    if total == 0:
        raise ValueError("empty histogram")
    rank = q * (total - 1)
    seen = 0
    for b in sorted(hist):
        seen += hist[b]
        if seen > rank:
            return round(b * BIN_BITS, 6)
    return round(max(hist) * BIN_BITS, 6)


def histogram_median(hist: dict[int, int], n: int) -> float:
    """`statistics.median` of the values' bin edges: the middle one, or the mean of the two."""
    lo_rank, hi_rank = (n - 1) // 2, n // 2
    lo = hi = None
    seen = 0
    for b in sorted(hist):
        seen += hist[b]
        if lo is None and seen > lo_rank:
            lo = b
        if seen > hi_rank:
            hi = b
            break
    return round((lo + hi) * BIN_BITS / 2, 6)


class WindowHistogram(beam.CombineFn):
    """Combines iterables of window entropies into {bin: count}."""

    def create_accumulator(self):
        return {}

    def add_input(self, acc, windows: Iterable[float]):
        for w in windows:
            b = to_bin(w)
            acc[b] = acc.get(b, 0) + 1
        return acc

    def merge_accumulators(self, accs):
        return merge_histograms(accs)

    def extract_output(self, acc):
        return acc


def entropy_floor(cfg: EntropyConfig, calibration_hist: dict[int, int]) -> dict:
    """The floor and how it was obtained, for the manifest and the per-shard decision."""
    n = sum(calibration_hist.values())
    info = {"floor_bits": None, "floor_source": None, "calibration_windows": n, "quantile": cfg.quantile}
    if cfg.floor == "off":
        info["floor_source"] = "off"
    elif cfg.floor != "auto":
        info.update(floor_bits=float(cfg.floor), floor_source="config")
    elif n >= cfg.min_calibration_windows:
        info.update(floor_bits=histogram_quantile(calibration_hist, cfg.quantile), floor_source="calibrated")
    else:
        info.update(floor_bits=float(cfg.fallback_floor_bits), floor_source="fallback_too_few_windows")
    return info


def packed_windows(tails: Iterable[str], size: int) -> list[float]:
    """Entropies of windows cut from the concatenated leftover tokens (in the given order)."""
    stream = " ".join(t for t in tails if t).split()
    return [window_entropy_bits(w) for w in windows(stream, size)]


MICRO = 1_000_000  # window entropies are summed as integer micro-bits (any merge order, same mean)


def window_summary(window_values: Iterable[float]) -> dict:
    """What a shard's audit needs of some of its windows, in integers: {"hist": {bin: count}
    (0.001-bit bins), "micro_sum": sum of round(bits * 1e6), "n": windows}. Bounded by the
    number of bins (entropy is below log2 of the window size), never by the shard's size."""
    hist: dict[int, int] = {}
    micro = n = 0
    for w in window_values:
        b = to_bin(w)
        hist[b] = hist.get(b, 0) + 1
        micro += round(w * MICRO)
        n += 1
    return {"hist": hist, "micro_sum": micro, "n": n}


def merge_window_summaries(summaries: Iterable[dict]) -> dict:
    """Sums `window_summary`s (a shard's chunks): integers only, so any order gives the same."""
    out = {"hist": {}, "micro_sum": 0, "n": 0}
    for s in summaries:
        out["hist"] = merge_histograms([out["hist"], s["hist"]])
        out["micro_sum"] += s["micro_sum"]
        out["n"] += s["n"]
    return out


def summary_to_json(summary: dict) -> dict:
    """A window summary as JSON can hold it (bins as sorted [bin, count] pairs): commit markers."""
    return {"hist": sorted([int(b), int(c)] for b, c in summary["hist"].items()),
            "micro_sum": int(summary["micro_sum"]), "n": int(summary["n"])}


def summary_from_json(obj: dict) -> dict:
    return {"hist": {int(b): int(c) for b, c in obj["hist"]}, "micro_sum": int(obj["micro_sum"]),
            "n": int(obj["n"])}


def audit_shard(summary: dict, floor_bits: float | None) -> dict:
    """Per-shard figures and the hold decision, from the merged `window_summary` of all its
    chunks: the median of the windows' 0.001-bit bin edges (so the exact median, to 0.001 bit).
    Deterministic for any order of chunks and windows."""
    n = summary["n"]
    if not n:
        return {"windows": 0, "entropy_median_bits": None, "entropy_mean_bits": None,
                "below_floor": False, "audited": False}
    median = histogram_median(summary["hist"], n)
    below = floor_bits is not None and median < floor_bits
    return {
        "windows": n,
        "entropy_median_bits": median,
        "entropy_mean_bits": round(summary["micro_sum"] / n / MICRO, 6),
        "below_floor": below,
        "audited": floor_bits is not None,
    }


class ShardWindows(beam.CombineFn):
    """Per shard (CombinePerKey): merges its chunks' `window_summary`s."""

    def create_accumulator(self):
        return {"hist": {}, "micro_sum": 0, "n": 0}

    def add_input(self, acc, summary):
        return merge_window_summaries([acc, summary])

    def merge_accumulators(self, accs):
        return merge_window_summaries(accs)

    def extract_output(self, acc):
        return acc


def hold_reason(audit: dict, floor_bits: float) -> str:
    return f"shard_entropy_below_floor:{audit['entropy_median_bits']:.3f}<{floor_bits:.3f}"
