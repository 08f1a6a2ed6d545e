"""monitor.html: the tail monitor's result (models/monitor.py) as one page in the report's style
(transforms/report.py: the same stylesheet and chart helpers, inline SVG, no scripts, a
Content-Security-Policy that allows nothing else)."""

from __future__ import annotations

import math
from typing import Mapping, Sequence

from collapseguard.transforms.report import CSP, _CSS, _card, _fmt, _fmt_int, _legend, _svg, _table, _text, esc

BAND_COLORS = {"head": "#0072B2", "torso": "#E69F00", "tail": "#D55E00"}
BASELINE_COLOR = "#999999"


def log_bars(rows: Sequence[tuple[str, Sequence[tuple[str, float | None, str]]]], label: str,
             width: int = 520) -> str:
    """Horizontal bars on a log10 axis: rows of (group label, [(series, value, colour)])."""
    values = [v for _, series in rows for _, v, _ in series if v is not None and v > 0]
    if not values:
        return '<p class="note">No words scored.</p>'
    lo = math.floor(math.log10(min(values)))
    hi = max(lo + 1, math.ceil(math.log10(max(values))))
    label_w, right_w, bar_h, gap = 70, 90, 16, 10
    span = width - label_w - right_w
    parts, y = [], 4
    for group, series in rows:
        parts.append(_text(label_w - 8, y + bar_h * len(series) / 2 + 4, group, "end", 12, "#1d2330"))
        for _name, v, color in series:
            if v is not None and v > 0:
                w = span * (math.log10(v) - lo) / (hi - lo)
                parts.append(f'<rect x="{label_w}" y="{y}" width="{max(w, 1):.1f}" height="{bar_h - 3}" fill="{color}"/>')
                parts.append(_text(label_w + max(w, 1) + 5, y + bar_h - 5, f"{v:,.1f}", "start", 11, "#1d2330"))
            y += bar_h
        y += gap
    for e in range(lo, hi + 1):
        x = label_w + span * (e - lo) / (hi - lo)
        parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="0" y2="{y - gap + 2}" stroke="#d8dde6"/>')
        parts.append(_text(x, y + 10, f"1e{e}", "middle", 10))
    return _svg(width, y + 16, "".join(parts), label)


def _bands_section(result: Mapping) -> str:
    ppl = result["perplexity"]["all"]
    base = ((result.get("baseline") or {}).get("changes")) or []
    before = {r["metric"]: r["before"] for r in base}
    rows = []
    for band in ("head", "torso", "tail"):
        series = [("now", ppl[band]["perplexity"], BAND_COLORS[band])]
        if base:
            series.insert(0, ("baseline", before.get(f"perplexity.all.{band}.perplexity"), BASELINE_COLOR))
        rows.append((band, series))
    legend = _legend([("baseline", BASELINE_COLOR), ("this model", BAND_COLORS["tail"])]) if base else ""
    k = result["settings"]["k"]
    table = _table(["band", "Zipf", "words", "perplexity per word", "mean log-prob", f"recall@{k}"], [
        [esc(band), esc(_zipf_range(result, band)), _fmt_int(ppl[band]["words"]), _fmt(ppl[band]["perplexity"], 1),
         _fmt(ppl[band]["mean_logprob"]), _fmt(ppl[band]["recall_at_k"])] for band in ("head", "torso", "tail")])
    per_lang = result["perplexity"].get("per_language") or {}
    lang_rows = [[esc(lang)] + [_fmt(t[b]["perplexity"], 1) for b in ("head", "torso", "tail")] +
                 [_fmt_int(sum(t[b]["words"] for b in t))] for lang, t in per_lang.items()]
    langs = (f"<h3>Per language</h3>{_table(['language', 'head', 'torso', 'tail', 'words'], lang_rows)}"
             if len(lang_rows) > 1 else "")
    return (f'<p class="note">Perplexity per word (a word\'s log-prob is the sum of its tokens\'), by the word\'s '
            f"wordfreq Zipf frequency in its document's language. Log scale.</p>{legend}"
            f"{log_bars(rows, 'perplexity per band', width=1060)}{table}{langs}")


def _zipf_range(result: Mapping, band: str) -> str:
    s = result["settings"]
    return {"head": f">= {s['head_zipf']:g}", "torso": f"{s['tail_zipf']:g} - {s['head_zipf']:g}",
            "tail": f"< {s['tail_zipf']:g}"}[band]


def _generation_section(result: Mapping) -> str:
    gen = result["generation"]
    if not gen["prompts"]:
        return '<p class="note">No anchor document is long enough for a prompt and its continuation.</p>'
    m, h = gen["model"], gen["human"]
    keys = [("distinct_1", "distinct-1"), ("distinct_2", "distinct-2"), ("distinct_3", "distinct-3"),
            ("msttr", "MSTTR (25-word segments)"), ("self_similarity", "4-gram self-similarity"),
            ("vocabulary", "vocabulary"), ("words", "words"), ("tail_word_share", "tail-word share")]
    rows = [[esc(label), _num(m.get(k)), _num(h.get(k))] for k, label in keys]
    samples = "".join(f"<tr><td>{esc(s['prompt'])}</td><td>{esc(s['model'])}</td></tr>" for s in gen.get("samples", []))
    return (f'<p class="note">{gen["prompts"]} anchor openings of {result["settings"]["prompt_words"]} words, each '
            f'continued for {result["settings"]["continuation_words"]} words by the model (sampled at temperature 1, '
            f'seed {result["settings"]["seed"]}) and by the human text itself.</p>'
            f"{_table(['measure', 'model', 'human'], rows)}"
            f"<h3>Samples</h3><table class=\"text\"><thead><tr><th>opening</th><th>model's continuation</th></tr>"
            f"</thead><tbody>{samples}</tbody></table>")


def _baseline_section(result: Mapping) -> str:
    base = result.get("baseline")
    if not base:
        return ""
    rows = []
    for r in base["changes"]:
        cls = "bad" if r["worse"] else "ok" if r["worse"] is False and r["change"] else ""
        rel = "–" if r["relative"] is None else f"{r['relative']:+.1%}"
        verdict = "–" if r["worse"] is None else ("worse" if r["worse"] else "better" if r["change"] else "same")
        rows.append([esc(r["label"]), _num(r["before"]), _num(r["after"]), f'<span class="{cls}">{esc(rel)}</span>',
                     f'<span class="{cls}">{verdict}</span>'])
    model = (base.get("model") or {}).get("model", "")
    differ = base.get("settings_differ") or []
    warn = (f'<p class="bad">Not like for like: {esc("; ".join(differ))}.</p>' if differ else "")
    return (f'<section><h2>Against the baseline</h2><p class="note">Baseline model: {esc(model)}. "Worse" is the '
            f"direction collapse moves a metric.</p>{warn}{_table(['metric', 'baseline', 'now', 'change', ''], rows)}</section>")


def _num(v) -> str:
    if v is None:
        return "–"
    return _fmt_int(v) if isinstance(v, int) else _fmt(v, 4)


def render_monitor(result: Mapping) -> str:
    ppl, gen = result["perplexity"]["all"], result["generation"]
    k = result["settings"]["k"]
    cards = "".join([
        _card("tail perplexity", _fmt(ppl["tail"]["perplexity"], 1)),
        _card("torso perplexity", _fmt(ppl["torso"]["perplexity"], 1)),
        _card("head perplexity", _fmt(ppl["head"]["perplexity"], 1)),
        _card(f"tail recall@{k}", _fmt(ppl["tail"]["recall_at_k"])),
        _card("distinct-2 (human)", f'{_fmt(gen["model"]["distinct_2"])} <small>({_fmt(gen["human"]["distinct_2"])})</small>'),
        _card("vocabulary vs human", _fmt(gen.get("vocabulary_ratio"), 2)),
    ])
    model = result["model"]
    sections = [("Perplexity on the anchor, by word frequency", _bands_section(result)),
                ("Diversity of the model's writing", _generation_section(result))]
    body = "".join(f"<section><h2>{esc(t)}</h2>{s}</section>" for t, s in sections)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<title>collapseguard monitor</title>"
        f"<style>{_CSS}</style></head><body><main>"
        "<h1>collapseguard tail monitor</h1>"
        f'<p class="sub">{esc(model.get("model", model.get("kind")))} ({esc(model.get("version", ""))}) on '
        f'{_fmt_int(result["anchor"]["documents"])} anchor documents, {_fmt_int(result["anchor"]["words_scored"])} '
        f"words scored.</p>"
        f'<div class="cards">{cards}</div>{_baseline_section(result)}{body}</main></body></html>\n'
    )
