"""report.html: the page a person opens first. One self-contained file, no scripts.

`ReportStats` (a CombineFn over records) gathers, in bounded memory and with integer counts only
(so every runner and merge order gives the same numbers), what the page plots; `render_report`
draws it with the manifest and mixture.json as inline SVG.

Safety: every string that comes from data (source, shard, id, reason, config value) goes
through `html.escape`; the page has no script, no event handler, no external resource, and a
Content-Security-Policy that forbids scripts and any network fetch, so a document holding
`<script>` or `"><img onerror=...>` can neither run nor load anything.

The `stats` argument of `render_report` is ReportStats' output plus a "diversity" entry:

    {
      "report_stats_version": 1,
      "documents": int, "tokens": int,                       # tokens = n_words
      "by_provenance": {provenance: int}, "by_stratum": {stratum: int},
      "sources": {
        "rows": [{"source": str | None, "counts": {provenance: int}, "total": int}, ...],
                                                             # top `top_sources`, largest first
        "other": {"sources": int | None, "counts": {provenance: int}, "total": int},
        "distinct": int | None, "beyond_cap": bool, "max_sources": int,
                          # beyond_cap: more than max_sources distinct sources; then the two
                          # source counts are None (unknowable in bounded memory)
      },
      "histograms": {column: {"edges": [float], "counts": {provenance: [int]},
                              "missing": {provenance: int}}},          # for HIST_COLUMNS
      "sample_weight": {"edges": [float], "counts": {stratum: [int]},       # weight > 0
                        "zero": {stratum: int}, "missing": {stratum: int},
                        "summary": {stratum: {"documents": int, "mean": float,
                                              "min": float, "max": float}}},
      "diversity": {stratum: DiversityStats output},        # added by the caller
    }
"""

from __future__ import annotations

import hashlib
import html
import math
from functools import lru_cache
from typing import Mapping, Sequence

import apache_beam as beam

from collapseguard.core.schema import ALL_OUTPUTS, PROVENANCE_LABELS

REPORT_STATS_VERSION = 2  # 2: rare_word_density histogram

# (column, low edge, high edge, bins): fixed edges, so histograms merge by adding integers.
# Values outside [low, high) are counted in the first / last bin.
HIST_COLUMNS = (
    ("p_synthetic", 0.0, 1.0, 20),
    ("lm_mean_logprob", -8.0, 0.0, 32),
    ("lm_fdg_curvature", -4.0, 8.0, 24),
    ("lm_mean_entropy", 0.0, 8.0, 32),
    ("token_entropy_bits", 2.0, 8.0, 24),
    ("ttr", 0.0, 1.0, 20),
    ("burstiness", 0.0, 2.0, 20),
    ("repetition", 0.0, 1.0, 20),
    ("rare_word_fraction", 0.0, 0.3, 30),
    ("rare_word_density", 0.0, 0.15, 30),
    ("mean_zipf", 2.0, 7.0, 25),
)
WEIGHT_EDGES = (0.0, 5.0, 20)  # sample_weight > 0 in 0.25-wide bins; exact zeros counted apart
WEIGHT_UNITS = 10**6  # weight sums are exact integers of 1e-6 (order-free, like mixture.py)
_NO_SOURCE = "\x00"  # accumulator key of a missing source (never a real source name)

PROVENANCE_COLORS = {  # Okabe-Ito, readable by colour-blind readers
    "verified_human": "#009E73",
    "unverified_human": "#56B4E9",
    "known_synthetic": "#D55E00",
    "suspected_synthetic": "#E69F00",
}
STRATUM_COLORS = {
    "anchor": "#000000",
    "human_verified": "#009E73",
    "human_unverified": "#56B4E9",
    "synthetic_known": "#D55E00",
    "synthetic_suspected": "#E69F00",
    "review": "#CC79A7",
}
_OTHER_COLOR = "#999999"


def edges(low: float, high: float, bins: int) -> list[float]:
    return [round(low + (high - low) * i / bins, 9) for i in range(bins + 1)]


def bin_index(value: float, low: float, high: float, bins: int) -> int:
    i = int(math.floor((value - low) / (high - low) * bins))
    return min(bins - 1, max(0, i))


def _number(v) -> float | None:
    if v is None or isinstance(v, bool):
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _source_key(source) -> tuple[int, str]:
    s = _NO_SOURCE if source is None else str(source)
    return _hashed_source(s)


@lru_cache(maxsize=4096)  # a corpus has few sources, each seen on many rows
def _hashed_source(s: str) -> tuple[int, str]:
    return int.from_bytes(hashlib.sha256(s.encode("utf-8", "surrogatepass")).digest()[:8], "big"), s


def _add_counts(dst: dict, src: Mapping) -> None:
    for k, v in src.items():
        dst[k] = dst.get(k, 0) + v


def _add_lists(dst: dict, src: Mapping) -> None:
    for k, v in src.items():
        if k in dst:
            dst[k] = [a + b for a, b in zip(dst[k], v)]
        else:
            dst[k] = list(v)


class ReportStats(beam.CombineFn):
    """Records -> the `stats` dict of `render_report` (without "diversity").

    Input element: a record dict (after sample weights); reads `source`, `provenance`,
    `stratum`, `n_words`, `sample_weight` and the HIST_COLUMNS present, ignores the rest.

    Bounded: per-source counts are kept for at most `max_sources` sources, those with the
    smallest sha256(source) (the kept set is the same for any merge order, and its counts are
    exact); the others are summed into "other". The output lists the `top_sources` largest.
    Everything else is a fixed-size table of integer counts.
    """

    def __init__(self, top_sources: int = 30, max_sources: int = 2000):
        self._top = top_sources
        self._max_sources = max_sources

    def create_accumulator(self):
        return {"n": 0, "tokens": 0, "prov": {}, "stratum": {}, "src": {}, "src_other": {},
                "src_dropped": 0, "hist": {}, "missing": {}, "w": {}, "w_zero": {}, "w_missing": {},
                "w_sum": {}, "w_min": {}, "w_max": {}}

    def add_input(self, acc, record):
        prov = str(record.get("provenance"))
        stratum = str(record.get("stratum"))
        acc["n"] += 1
        acc["tokens"] += int(record.get("n_words") or 0)
        acc["prov"][prov] = acc["prov"].get(prov, 0) + 1
        acc["stratum"][stratum] = acc["stratum"].get(stratum, 0) + 1
        key = _source_key(record.get("source"))
        row = acc["src"].setdefault(key, {})
        row[prov] = row.get(prov, 0) + 1
        if len(acc["src"]) > 2 * self._max_sources:
            self._prune_sources(acc)
        for col, lo, hi, bins in HIST_COLUMNS:
            v = _number(record.get(col))
            if v is None:
                if col in record:
                    m = acc["missing"].setdefault(col, {})
                    m[prov] = m.get(prov, 0) + 1
                continue
            h = acc["hist"].setdefault(col, {}).setdefault(prov, [0] * bins)
            h[bin_index(v, lo, hi, bins)] += 1
        w = _number(record.get("sample_weight"))
        if w is not None:
            acc["w_sum"][stratum] = acc["w_sum"].get(stratum, 0) + int(round(w * WEIGHT_UNITS))
            acc["w_min"][stratum] = min(w, acc["w_min"].get(stratum, w))
            acc["w_max"][stratum] = max(w, acc["w_max"].get(stratum, w))
        if w is None:
            acc["w_missing"][stratum] = acc["w_missing"].get(stratum, 0) + 1
        elif w == 0:
            acc["w_zero"][stratum] = acc["w_zero"].get(stratum, 0) + 1
        else:
            lo, hi, bins = WEIGHT_EDGES
            h = acc["w"].setdefault(stratum, [0] * bins)
            h[bin_index(w, lo, hi, bins)] += 1
        return acc

    def _prune_sources(self, acc):
        if len(acc["src"]) <= self._max_sources:
            return acc
        keys = sorted(acc["src"])
        for k in keys[self._max_sources:]:
            _add_counts(acc["src_other"], acc["src"].pop(k))
            acc["src_dropped"] += 1
        return acc

    def merge_accumulators(self, accs):
        out = self.create_accumulator()
        for a in accs:
            out["n"] += a["n"]
            out["tokens"] += a["tokens"]
            _add_counts(out["prov"], a["prov"])
            _add_counts(out["stratum"], a["stratum"])
            for k, row in a["src"].items():
                _add_counts(out["src"].setdefault(k, {}), row)
            _add_counts(out["src_other"], a["src_other"])
            out["src_dropped"] += a["src_dropped"]
            for col, by_prov in a["hist"].items():
                _add_lists(out["hist"].setdefault(col, {}), by_prov)
            for col, by_prov in a["missing"].items():
                _add_counts(out["missing"].setdefault(col, {}), by_prov)
            _add_lists(out["w"], a["w"])
            _add_counts(out["w_zero"], a["w_zero"])
            _add_counts(out["w_missing"], a["w_missing"])
            _add_counts(out["w_sum"], a["w_sum"])
            for k, v in a["w_min"].items():
                out["w_min"][k] = min(v, out["w_min"].get(k, v))
            for k, v in a["w_max"].items():
                out["w_max"][k] = max(v, out["w_max"].get(k, v))
            if len(out["src"]) > 2 * self._max_sources:
                self._prune_sources(out)
        return out

    def compact(self, acc):
        return self._prune_sources(acc)

    def extract_output(self, acc):
        self._prune_sources(acc)
        # True exactly when the run has more than max_sources distinct sources (for any merge
        # order); how many more is unknown in bounded memory, so the counts of sources are None.
        beyond = acc["src_dropped"] > 0
        provs = _label_order(set(acc["prov"]), PROVENANCE_LABELS)
        strata = _label_order(set(acc["stratum"]), ALL_OUTPUTS)
        rows = []
        for (_, s), counts in acc["src"].items():
            rows.append({"source": None if s == _NO_SOURCE else s,
                         "counts": {p: counts[p] for p in provs if p in counts},
                         "total": sum(counts.values())})
        rows.sort(key=lambda r: (-r["total"], r["source"] is not None, r["source"] or ""))
        top, rest = rows[: self._top], rows[self._top:]
        other: dict[str, int] = dict(acc["src_other"])
        for r in rest:
            _add_counts(other, r["counts"])
        hists = {}
        for col, lo, hi, bins in HIST_COLUMNS:
            by_prov = acc["hist"].get(col, {})
            missing = acc["missing"].get(col, {})
            hists[col] = {"edges": edges(lo, hi, bins),
                          "counts": {p: list(by_prov[p]) for p in _label_order(set(by_prov), provs)},
                          "missing": {p: missing[p] for p in _label_order(set(missing), provs)}}
        lo, hi, bins = WEIGHT_EDGES
        return {
            "report_stats_version": REPORT_STATS_VERSION,
            "documents": acc["n"],
            "tokens": acc["tokens"],
            "by_provenance": {p: acc["prov"][p] for p in provs},
            "by_stratum": {s: acc["stratum"][s] for s in strata},
            "sources": {
                "rows": top,
                "other": {"sources": None if beyond else len(rest),
                          "counts": {p: other[p] for p in _label_order(set(other), provs)},
                          "total": sum(other.values())},
                "distinct": None if beyond else len(rows),
                "beyond_cap": beyond,
                "max_sources": self._max_sources,
            },
            "histograms": hists,
            "sample_weight": {
                "edges": edges(lo, hi, bins),
                "counts": {s: list(acc["w"][s]) for s in _label_order(set(acc["w"]), strata)},
                "zero": {s: acc["w_zero"][s] for s in _label_order(set(acc["w_zero"]), strata)},
                "missing": {s: acc["w_missing"][s] for s in _label_order(set(acc["w_missing"]), strata)},
                "summary": {s: {"documents": n, "mean": round(acc["w_sum"][s] / WEIGHT_UNITS / n, 6),
                                "min": acc["w_min"][s], "max": acc["w_max"][s]}
                            for s in _label_order(set(acc["w_sum"]), strata)
                            for n in [acc["stratum"][s] - acc["w_missing"].get(s, 0)] if n},
            },
        }


def _label_order(keys: set, known: Sequence[str]) -> list[str]:
    return [k for k in known if k in keys] + sorted(k for k in keys if k not in known)


# --- rendering --------------------------------------------------------------------------------

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"

_CSS = """
:root { --ink:#1d2330; --muted:#5b6473; --line:#d8dde6; --bg:#f6f7f9; --ok:#1a7f37; --bad:#c62828; }
* { box-sizing: border-box; }
body { margin:0; background:var(--bg); color:var(--ink);
  font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif; }
main { max-width:1120px; margin:0 auto; padding:24px 20px 48px; }
h1 { font-size:22px; margin:0 0 4px; } h2 { font-size:17px; margin:0 0 10px; }
p.sub, .note { color:var(--muted); margin:4px 0 10px; }
section { background:#fff; border:1px solid var(--line); border-radius:8px; padding:16px 18px; margin:16px 0; }
.cards { display:grid; grid-template-columns:repeat(auto-fill,minmax(160px,1fr)); gap:10px; }
.card { background:#fff; border:1px solid var(--line); border-radius:8px; padding:10px 12px; }
.card .k { color:var(--muted); font-size:12px; } .card .v { font-size:20px; font-weight:600; }
.card.ok { border-left:5px solid var(--ok); } .card.bad { border-left:5px solid var(--bad); }
.ok { color:var(--ok); } .bad { color:var(--bad); }
table { border-collapse:collapse; width:100%; font-variant-numeric:tabular-nums; }
th, td { text-align:right; padding:4px 8px; border-bottom:1px solid var(--line); }
th:first-child, td:first-child { text-align:left; } th { color:var(--muted); font-weight:600; white-space:nowrap; }
table.text th, table.text td { text-align:left; }
h3 { font-size:15px; margin:18px 0 8px; }
.grid { display:grid; grid-template-columns:repeat(auto-fill,minmax(330px,1fr)); gap:12px; }
.grid.wide { grid-template-columns:repeat(auto-fill,minmax(480px,1fr)); }
.legend { display:flex; flex-wrap:wrap; gap:14px; margin:4px 0 8px; color:var(--muted); font-size:12px; }
.legend i { display:inline-block; width:11px; height:11px; border-radius:2px; margin-right:5px; vertical-align:-1px; }
svg { display:block; max-width:100%; height:auto; } svg text { font-family:inherit; }
code { font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace; font-size:12px; word-break:break-all; }
"""


def esc(value) -> str:
    """Text from data, safe in element content and in quoted attributes. `=` is escaped too, so
    not even the text of a would-be attribute (`onerror=`) appears literally in the page."""
    return html.escape("" if value is None else str(value), quote=True).replace("=", "&#61;")


def _fmt_int(n) -> str:
    return f"{int(n):,}" if isinstance(n, (int, float)) and not isinstance(n, bool) else "–"


def _fmt(x, digits: int = 3) -> str:
    v = _number(x)
    return "–" if v is None else f"{v:.{digits}f}"


def _plural(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def _clip(s: str, n: int) -> str:
    return s if len(s) <= n else s[: n - 1] + "…"


def _legend(items: Sequence[tuple[str, str]]) -> str:
    return '<div class="legend">' + "".join(
        f'<span><i style="background:{c}"></i>{esc(label)}</span>' for label, c in items) + "</div>"


def _svg(width: int, height: int, body: str, label: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" role="img" aria-label="{esc(label)}">{body}</svg>')


def _text(x: float, y: float, s: str, anchor: str = "start", size: int = 11, fill: str = "#5b6473",
          weight: str = "normal") -> str:
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" fill="{fill}" text-anchor="{anchor}" '
            f'font-weight="{weight}">{esc(s)}</text>')


def stacked_bars(rows: Sequence[tuple[str, Sequence[tuple[str, int, str]], int]], width: int = 1060) -> str:
    """Horizontal 100% bars: rows of (label, [(part name, count, colour)], total)."""
    label_w, total_w, row_h = 230, 90, 22
    bar_w = width - label_w - total_w
    height = row_h * len(rows) + 8
    parts = []
    for r, (label, segs, total) in enumerate(rows):
        y = 4 + r * row_h
        parts.append(f"<g><title>{esc(label)}</title>"
                     + _text(label_w - 8, y + 14, _clip(label, 34), "end", 12, "#1d2330") + "</g>")
        x = float(label_w)
        for name, count, color in segs:
            if count <= 0 or total <= 0:
                continue
            w = bar_w * count / total
            parts.append(f'<rect x="{x:.2f}" y="{y + 2}" width="{w:.2f}" height="{row_h - 6}" fill="{color}">'
                         f"<title>{esc(label)} · {esc(name)}: {count:,} ({100 * count / total:.1f}%)</title></rect>")
            x += w
        parts.append(_text(width - total_w + 8, y + 14, f"{total:,}", "start", 12, "#1d2330"))
    return _svg(width, height, "".join(parts), "stacked bars")


def shard_entropy_chart(shards: Sequence[Mapping], floor: float | None, max_rows: int = 60,
                        width: int = 1060) -> tuple[str, str]:
    """Dot per shard (median window entropy, bits) against the floor line; held shards in red.

    Shows every held shard and then the lowest medians, up to `max_rows`; returns (svg, note)."""
    audited = [s for s in shards if _number((s.get("entropy") or {}).get("entropy_median_bits")) is not None]
    held = [s for s in audited if (s.get("entropy") or {}).get("below_floor")]
    key = lambda s: (s["entropy"]["entropy_median_bits"], str(s.get("shard")))  # noqa: E731
    rest = sorted((s for s in audited if s not in held), key=key)
    shown = sorted(held, key=key) + rest[: max(0, max_rows - len(held))]
    shown.sort(key=key)
    note = []
    if len(audited) > len(shown):
        note.append(f"{_plural(len(audited) - len(shown), 'more audited shard')} not drawn "
                    "(all above the lowest shown).")
    if len(shards) > len(audited):
        note.append(f"{_plural(len(shards) - len(audited), 'shard')} without an entropy figure (no tokens).")
    if not shown:
        return "", " ".join(note) or "No shard was audited."
    values = [s["entropy"]["entropy_median_bits"] for s in shown] + ([floor] if floor is not None else [])
    lo = math.floor(min(values) * 2 - 1) / 2
    hi = math.ceil(max(values) * 2 + 1) / 2
    label_w, right_w, row_h, top = 300, 70, 18, 26
    plot_w = width - label_w - right_w
    height = top + row_h * len(shown) + 12

    def xs(v):
        return label_w + plot_w * (v - lo) / (hi - lo)

    parts = []
    step = 0.5 if hi - lo <= 6 else 1.0
    t = lo
    while t <= hi + 1e-9:
        parts.append(f'<line x1="{xs(t):.1f}" x2="{xs(t):.1f}" y1="{top - 4}" y2="{height - 8}" stroke="#eceff3"/>')
        parts.append(_text(xs(t), top - 10, f"{t:g}", "middle", 10))
        t += step
    parts.append(_text(label_w - 24, top - 10, "median window entropy (bits)", "end", 10))
    if floor is not None:
        parts.append(f'<line x1="{xs(floor):.1f}" x2="{xs(floor):.1f}" y1="{top - 4}" y2="{height - 8}" '
                     f'stroke="#c62828" stroke-width="1.5" stroke-dasharray="5 3"/>')
    for r, s in enumerate(shown):
        e = s["entropy"]
        y = top + r * row_h + row_h / 2
        is_held = bool(e.get("below_floor"))
        color = "#c62828" if is_held else "#0072B2"
        name = str(s.get("shard"))
        parts.append(f"<g><title>{esc(name)}</title>"
                     + _text(label_w - 8, y + 4, _clip(name, 44), "end", 11, "#1d2330") + "</g>")
        parts.append(f'<line x1="{label_w}" x2="{xs(e["entropy_median_bits"]):.1f}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e3e7ee"/>')
        parts.append(f'<circle cx="{xs(e["entropy_median_bits"]):.1f}" cy="{y:.1f}" r="4.5" fill="{color}">'
                     f'<title>{esc(name)}: median {e["entropy_median_bits"]:.3f} bits over '
                     f'{_fmt_int(e.get("windows"))} windows{" — held for review" if is_held else ""}</title></circle>')
        if is_held:
            parts.append(_text(width - right_w + 6, y + 4, "HELD", "start", 11, "#c62828", "bold"))
    return _svg(width, height, "".join(parts), "shard entropy against the floor"), " ".join(note)


def histogram_panel(title: str, edge_list: Sequence[float], series: Sequence[tuple[str, Sequence[int], str]],
                    width: int = 330, height: int = 180, note: str = "") -> str:
    """Step lines of each series' share of its documents per bin (shapes comparable across sizes)."""
    left, right, top, bottom = 40, 10, 24, 30
    pw, ph = width - left - right, height - top - bottom
    lo, hi = edge_list[0], edge_list[-1]
    shares = []
    for name, counts, color in series:
        n = sum(counts)
        if n:
            shares.append((name, [c / n for c in counts], color, n))
    ymax = max((max(s) for _, s, _, _ in shares), default=1.0) or 1.0
    ymax = math.ceil(ymax * 10) / 10 if ymax > 0.1 else ymax * 1.1

    def xs(v):
        return left + pw * (v - lo) / (hi - lo)

    def ys(v):
        return top + ph * (1 - v / ymax)

    parts = [_text(left, 14, title, "start", 12, "#1d2330", "600")]
    parts.append(f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="#fbfcfd" stroke="#e3e7ee"/>')
    for frac in (0.0, 0.5, 1.0):
        v = lo + (hi - lo) * frac
        parts.append(_text(xs(v), height - 12, f"{v:g}", "middle", 10))
    parts.append(_text(left - 4, top + 8, f"{ymax:.0%}" if ymax >= 0.1 else f"{ymax:.1%}", "end", 10))
    parts.append(_text(left - 4, top + ph, "0", "end", 10))
    for name, share, color, n in shares:
        d = [f"M{xs(edge_list[0]):.1f},{ys(0):.1f}"]
        for i, s in enumerate(share):
            d.append(f"V{ys(s):.1f}H{xs(edge_list[i + 1]):.1f}")
        d.append(f"V{ys(0):.1f}")
        parts.append(f'<path d="{"".join(d)}" fill="none" stroke="{color}" stroke-width="1.8">'
                     f"<title>{esc(name)} (n={n:,})</title></path>")
    if note:
        parts.append(_text(width - right, height - 1, note, "end", 9))
    return _svg(width, height, "".join(parts), title)


def _bar_pair(items: Sequence[tuple[str, float, str]], width: int = 520) -> str:
    label_w, row_h = 150, 26
    vmax = max((v for _, v, _ in items), default=0) or 1.0
    parts = []
    for r, (label, v, color) in enumerate(items):
        y = 4 + r * row_h
        w = (width - label_w - 90) * v / vmax
        parts.append(_text(label_w - 8, y + 15, label, "end", 12, "#1d2330"))
        parts.append(f'<rect x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{row_h - 8}" fill="{color}"/>')
        parts.append(_text(label_w + w + 6, y + 15, f"{v:,.1f}", "start", 12, "#1d2330"))
    return _svg(width, row_h * len(items) + 8, "".join(parts), "rare-word coverage")


def _card(key: str, value: str, cls: str = "") -> str:
    return f'<div class="card {cls}"><div class="k">{esc(key)}</div><div class="v">{value}</div></div>'


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], text: bool = False) -> str:
    """Cells are already-escaped HTML. text=True: every column left-aligned (not numbers)."""
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    cls = ' class="text"' if text else ""
    return f"<table{cls}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _headline(manifest: Mapping, mixture: Mapping) -> str:
    conserved = manifest.get("conserved")
    floor = manifest.get("entropy") or {}
    cards = [
        _card("records read", _fmt_int(manifest.get("records_read"))),
        _card("rejected", _fmt_int(manifest.get("records_rejected"))),
    ]
    by_stratum = manifest.get("records_by_stratum") or {}
    for name in _label_order(set(by_stratum), ALL_OUTPUTS):
        cards.append(_card(name, _fmt_int(by_stratum[name])))
    cards.append(_card("conserved (in = out)", "yes" if conserved else "NO", "ok" if conserved else "bad"))
    fb = floor.get("floor_bits")
    cards.append(_card(f"entropy floor ({floor.get('floor_source') or '–'})",
                       f"{fb:.3f} bits" if _number(fb) is not None else "–"))
    held = manifest.get("shards_held_for_review") or []
    cards.append(_card("shards held / total", f"{len(held):,} / {_fmt_int(manifest.get('shards_total'))}",
                       "bad" if held else ""))
    if mixture:
        under = mixture.get("under_ceiling")
        cards.append(_card("synthetic share (weighted)",
                           f"{100 * (_number(mixture.get('synthetic_share')) or 0):.4f}%",
                           "ok" if under else "bad"))
    return '<div class="cards">' + "".join(cards) + "</div>"


def _sources_section(stats: Mapping) -> str:
    src = stats.get("sources") or {}
    provs = list(PROVENANCE_LABELS) + sorted(
        {p for r in src.get("rows", []) for p in r.get("counts", {})} - set(PROVENANCE_LABELS))
    colors = [PROVENANCE_COLORS.get(p, _OTHER_COLOR) for p in provs]
    rows = []
    for r in src.get("rows", []):
        label = "(no source)" if r.get("source") is None else str(r["source"])
        rows.append((label, [(p, r["counts"].get(p, 0), c) for p, c in zip(provs, colors)], r.get("total", 0)))
    other = src.get("other") or {}
    if other.get("total"):
        n_other = other.get("sources")
        rows.append((f"other ({n_other:,} sources)" if isinstance(n_other, int) else "other sources",
                     [(p, other["counts"].get(p, 0), c) for p, c in zip(provs, colors)], other["total"]))
    if not rows:
        return "<p class='note'>No records.</p>"
    if src.get("beyond_cap"):
        note = f"more than {_fmt_int(src.get('max_sources'))} distinct sources (the top ones by documents shown)"
    else:
        note = f"{_fmt_int(src.get('distinct'))} distinct sources"
    return (_legend(list(zip(provs, colors))) + stacked_bars(rows)
            + f'<p class="note">{esc(note)}; bar = share of the source\'s documents, number = documents.</p>')


def _scores_section(stats: Mapping) -> str:
    panels = []
    provs_seen = set()
    for col, *_ in HIST_COLUMNS:
        h = (stats.get("histograms") or {}).get(col)
        if not h or not any(sum(c) for c in h.get("counts", {}).values()):
            continue
        series = [(p, c, PROVENANCE_COLORS.get(p, _OTHER_COLOR)) for p, c in h["counts"].items()]
        provs_seen.update(h["counts"])
        missing = sum(h.get("missing", {}).values())
        panels.append(histogram_panel(col, h["edges"], series, note=f"{missing:,} missing" if missing else ""))
    if not panels:
        return "<p class='note'>No score columns present.</p>"
    provs = _label_order(provs_seen, PROVENANCE_LABELS)
    return (_legend([(p, PROVENANCE_COLORS.get(p, _OTHER_COLOR)) for p in provs])
            + '<div class="grid">' + "".join(panels) + "</div>"
            + '<p class="note">Each line is the share of that provenance\'s documents per bin; values outside '
              "the axis are counted in the end bins.</p>")


def _weights_section(stats: Mapping) -> str:
    sw = stats.get("sample_weight") or {}
    counts = sw.get("counts") or {}
    summary = sw.get("summary") or {}
    # one weight for a whole stratum (synthetic, anchor, review) says nothing as a histogram
    varied = {s: c for s, c in counts.items()
              if (summary.get(s) or {}).get("max", 1) != (summary.get(s) or {}).get("min", 0)}
    panel = ""
    if varied:
        series = [(s, c, STRATUM_COLORS.get(s, _OTHER_COLOR)) for s, c in varied.items()]
        panel = (_legend([(s, STRATUM_COLORS.get(s, _OTHER_COLOR)) for s in varied])
                 + histogram_panel("sample_weight of documents with varying weights", sw["edges"], series,
                                   width=520, height=200))
    zero, missing = sw.get("zero") or {}, sw.get("missing") or {}
    rows = []
    for s in _label_order(set(counts) | set(zero) | set(missing) | set(summary), ALL_OUTPUTS):
        m = summary.get(s) or {}
        rows.append([esc(s), _fmt_int(zero.get(s, 0)), _fmt_int(sum(counts.get(s, []))), _fmt(m.get("mean"), 4),
                     _fmt(m.get("min"), 6), _fmt(m.get("max"), 4), _fmt_int(missing.get(s, 0))])
    table = _table(["stratum", "weight 0", "weight > 0", "mean", "min", "max", "missing"], rows)
    return (panel + table
            + '<p class="note">Human strata: 1 up to the cap, rising with rare-word density (distinct '
              "rare words per token), ramped over the run's own percentiles (tail oversampling, "
              "Shumailov et al. 2024); synthetic strata: one small weight that keeps their weighted token "
              "share under the ceiling (Dohmatob et al. 2025); anchor and review: 0.</p>")


def _mixture_section(mixture: Mapping) -> str:
    if not mixture:
        return "<p class='note'>No mixture figures.</p>"
    rows = []
    for name, s in (mixture.get("strata") or {}).items():
        rows.append([esc(name), _fmt_int(s.get("tokens")), f"{_number(s.get('weighted_tokens')) or 0:,.1f}",
                     f"{100 * (_number(s.get('weighted_share')) or 0):.4f}%"])
    under = mixture.get("under_ceiling")
    share = _number(mixture.get("synthetic_share")) or 0.0
    ceiling = _number(mixture.get("ceiling")) or 0.0
    out = [_table(["stratum", "tokens (n_words)", "weighted tokens", "weighted share"], rows),
           f'<p>Effective synthetic share <b class="{"ok" if under else "bad"}">{100 * share:.4f}%</b> '
           f"against a ceiling of {100 * ceiling:.4f}% — {'under' if under else 'OVER'} the ceiling "
           f"(unweighted: {100 * (_number(mixture.get('synthetic_share_unweighted')) or 0):.2f}%).</p>"]
    cov = mixture.get("rare_coverage") or {}
    budgets = cov.get("budgets") or []
    if budgets:
        out.append("<h3>Rare-word coverage</h3>")
        out.append('<p class="note">Expected distinct rare words (Zipf &lt; 3) covered by a token budget, '
                   f"drawing documents in proportion to sample_weight vs uniformly; estimated on a hash sample "
                   f"of {_fmt_int(cov.get('docs_sampled'))} training documents "
                   f"({_fmt_int(cov.get('rare_words_in_sample'))} distinct rare words).</p>")
        out.append('<div class="grid wide">')
        for b in budgets:
            f = _number(b.get("budget_share")) or 0
            ratio = _number(b.get("ratio"))
            out.append("<div>" + _text_block(f"budget {100 * f:g}% of tokens — ratio "
                                             f"{ratio:.2f}×" if ratio is not None else f"budget {100 * f:g}%")
                       + _bar_pair([("uniform", _number(b.get("uniform")) or 0.0, "#999999"),
                                    ("sample_weight", _number(b.get("weighted")) or 0.0, "#0072B2")], width=480)
                       + "</div>")
        out.append("</div>")
    return "".join(out)


def _text_block(s: str) -> str:
    return f"<p><b>{esc(s)}</b></p>"


def _diversity_section(stats: Mapping) -> str:
    div = stats.get("diversity") or {}
    if not div:
        return "<p class='note'>No diversity figures.</p>"
    rows = []
    for s in _label_order(set(div), ALL_OUTPUTS):
        d = div[s] or {}
        rows.append([esc(s), _fmt(d.get("ttr_w100")), _fmt(d.get("distinct_2")), _fmt(d.get("distinct_3")),
                     _fmt(d.get("self_similarity")), _fmt_int(d.get("docs_sampled")), _fmt_int(d.get("tokens_sampled"))])
    return (_table(["stratum", "TTR w100", "distinct-2", "distinct-3", "self-similarity",
                    "docs sampled", "tokens sampled"], rows)
            + '<p class="note">Higher TTR and distinct-n, lower self-similarity = more diverse text. TTR w100: '
              "mean type-token ratio of 100-token windows; distinct-n: distinct / total word n-grams over a fixed "
              "token budget; self-similarity: mean share of a document's 4-grams found in another sampled "
              "document (a Self-BLEU equivalent). All on a bounded hash-of-id sample per stratum, so figures "
              "compare across runs; a stratum with fewer sampled tokens reads more diverse.</p>")


def _shards_section(manifest: Mapping) -> str:
    floor = (manifest.get("entropy") or {}).get("floor_bits")
    svg, note = shard_entropy_chart(manifest.get("shards") or [], _number(floor))
    legend = _legend([("shard median", "#0072B2"), ("held for review", "#c62828"),
                      (f"floor {floor:.3f} bits" if _number(floor) is not None else "no floor", "#c62828")])
    out = [legend, svg]
    if note:
        out.append(f'<p class="note">{esc(note)}</p>')
    errors = manifest.get("shards_with_errors") or []
    if errors:
        rows = [[f"<code>{esc(e.get('shard'))}</code>", esc(_clip(str(e.get("error")), 160))] for e in errors[:20]]
        out.append("<h3>Shards with read errors</h3>" + _table(["shard", "error"], rows, text=True))
        if len(errors) > 20:
            out.append(f'<p class="note">{len(errors) - 20:,} more in manifest.json.</p>')
    reasons = manifest.get("rejected_by_reason") or {}
    if reasons:
        rows = [[esc(k), _fmt_int(v)] for k, v in reasons.items()]
        out.append("<h3>Rejected records by reason</h3>" + _table(["reason", "records"], rows))
    return "".join(out)


def render_report(manifest: Mapping, mixture: Mapping | None, stats: Mapping) -> str:
    """The whole report.html as one string (see the module docstring for `stats`)."""
    mixture = mixture or {}
    versions = manifest.get("versions") or {}
    ver = ", ".join(f"{k} {v}" for k, v in versions.items() if isinstance(v, str))
    sections = [
        ("Provenance mix per source", _sources_section(stats)),
        ("Shard entropy against the floor", _shards_section(manifest)),
        ("Score distributions per provenance", _scores_section(stats)),
        ("Sample weights", _weights_section(stats)),
        ("Training mix", _mixture_section(mixture)),
        ("Diversity per stratum", _diversity_section(stats)),
    ]
    body = "".join(f"<section><h2>{esc(t)}</h2>{s}</section>" for t, s in sections)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<title>collapseguard report</title>"
        f"<style>{_CSS}</style></head><body><main>"
        "<h1>collapseguard report</h1>"
        f'<p class="sub">{_fmt_int(stats.get("documents"))} documents in the strata and review, '
        f'{_fmt_int(stats.get("tokens"))} words. {esc(ver)}</p>'
        f"{_headline(manifest, mixture)}{body}</main></body></html>\n"
    )
