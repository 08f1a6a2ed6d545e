import importlib.util
import os
import random
from html.parser import HTMLParser

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from collapseguard.transforms.report import ReportStats, render_report
from fixtures_data import combine_in_order as combine

SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)>'
PROVS = {"verified_human": "human_verified", "unverified_human": "human_unverified",
         "known_synthetic": "synthetic_known", "suspected_synthetic": "synthetic_suspected"}


def records(n=400, seed=11, n_sources=12):
    rng = random.Random(seed)
    sources = [f"src-{i}" for i in range(n_sources)] + [SCRIPT, IMG, None]
    out = []
    for i in range(n):
        prov = rng.choice(list(PROVS))
        stratum = "anchor" if prov == "verified_human" and i % 20 == 0 else PROVS[prov]
        rec = {"id": f"{SCRIPT}{i}" if i % 50 == 0 else f"d{i}", "source": rng.choice(sources),
               "provenance": prov, "stratum": stratum, "n_words": rng.randint(10, 900),
               "text": SCRIPT + " body", "ttr": rng.random(), "burstiness": rng.random() * 2.5,
               "token_entropy_bits": rng.gauss(6, 0.5), "repetition": rng.random() / 5,
               "rare_word_fraction": rng.random() / 4, "p_synthetic": rng.random(),
               "lm_mean_logprob": rng.gauss(-3, 1) if i % 2 else None, "sample_weight":
               0.0 if stratum == "anchor" else (0.003 if prov.endswith("synthetic") else 1 + 3 * rng.random())}
        if i == 7:
            rec["ttr"] = float("nan")
        out.append(rec)
    return out


def test_report_stats_same_for_any_merge_order():
    recs = records()
    fn = ReportStats(top_sources=5, max_sources=6)  # forces the bounded source table to prune
    outs = [combine(fn, recs, 5, o) for o in ([0, 1, 2, 3, 4], [4, 3, 2, 1, 0], [2, 4, 0, 3, 1])]
    outs.append(combine(fn, recs[::-1], 3))
    assert all(o == outs[0] for o in outs)
    s = outs[0]
    assert s["documents"] == len(recs) and sum(s["by_provenance"].values()) == len(recs)
    src = s["sources"]
    assert len(src["rows"]) == 5 and src["beyond_cap"] is True
    assert sum(r["total"] for r in src["rows"]) + src["other"]["total"] == len(recs)
    h = s["histograms"]["ttr"]
    assert len(h["edges"]) == 21 and sum(map(sum, h["counts"].values())) == len(recs) - 1  # NaN -> missing
    assert sum(h["missing"].values()) == 1
    assert sum(map(sum, s["histograms"]["lm_mean_logprob"]["counts"].values())) == len(recs) // 2
    assert s["histograms"]["lm_fdg_curvature"]["counts"] == {}  # column absent: no data, no missing
    sw = s["sample_weight"]
    assert sw["zero"]["anchor"] == s["by_stratum"]["anchor"]
    assert sw["summary"]["synthetic_known"]["min"] == sw["summary"]["synthetic_known"]["max"] == 0.003
    assert 1.0 <= sw["summary"]["human_verified"]["mean"] <= 4.0


def test_report_stats_in_pipeline():
    recs = records(120)
    expected = combine(ReportStats(), recs)
    with TestPipeline() as p:
        out = p | beam.Create(recs) | beam.CombineGlobally(ReportStats())
        assert_that(out, equal_to([expected]))


def manifest(shards):
    return {
        "records_read": 410, "records_rejected": 10, "rejected_by_reason": {"invalid_json": 9, SCRIPT: 1},
        "records_by_stratum": {"anchor": 5, "human_verified": 100, "review": 40}, "conserved": True,
        "shards_total": len(shards), "shards_with_errors": [{"shard": IMG, "error": SCRIPT}],
        "shards_held_for_review": [s["shard"] for s in shards if s["entropy"]["below_floor"]],
        "entropy": {"floor_bits": 5.9, "floor_source": "calibrated"}, "shards": shards,
        "versions": {"collapseguard": "0.1.0"},
    }


def shard(name, median, held):
    return {"shard": name, "entropy": {"windows": 10, "entropy_median_bits": median, "below_floor": held}}


def render():
    shards = [shard(f"part-{i}.jsonl", 6.0 + i / 10, False) for i in range(5)]
    shards += [shard(SCRIPT, 4.1, True), shard(IMG, 5.2, True), shard("empty", None, False)]
    stats = combine(ReportStats(), records())
    stats["diversity"] = {"human_verified": {"ttr_w100": 0.7, "distinct_2": 0.8, "distinct_3": 0.95,
                                             "self_similarity": 0.01, "docs_sampled": 100, "tokens_sampled": 2000},
                          SCRIPT: {"ttr_w100": None}}
    mixture = {"strata": {"human_verified": {"tokens": 100, "weighted_tokens": 250.0, "weighted_share": 0.999},
                          IMG: {"tokens": 1, "weighted_tokens": 0.25, "weighted_share": 0.001}},
               "synthetic_share": 0.001, "synthetic_share_unweighted": 0.3, "ceiling": 0.001, "under_ceiling": True,
               "rare_coverage": {"docs_sampled": 50, "rare_words_in_sample": 70, "budgets": [
                   {"budget_share": 0.1, "uniform": 10.0, "weighted": 14.0, "ratio": 1.4}]}}
    return render_report(manifest(shards), mixture, stats)


class Collect(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.attrs, self.text = [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs += [(tag, k, v) for k, v in attrs]

    def handle_data(self, data):
        self.text.append(data)


def test_report_parses_and_holds_the_plots():
    page = render()
    p = Collect()
    p.feed(page)
    p.close()
    assert p.tags[0] == "html" and p.tags.count("svg") >= 8  # sources, shards, 7 score columns, weights, coverage
    assert "rect" in p.tags and "path" in p.tags and "circle" in p.tags
    csp = [v for t, k, v in p.attrs if t == "meta" and k == "content" and "default-src 'none'" in (v or "")]
    assert csp and "script-src" not in csp[0]
    text = "".join(p.text)
    assert "HELD" in text and text.count("HELD") == 2
    assert "src-0" in text and "(no source)" in text


def test_hostile_names_appear_only_escaped():
    page = render()
    low = page.lower()
    assert "<script" not in low and "onerror=" not in low and "<img" not in low
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    p = Collect()
    p.feed(page)
    assert "script" not in p.tags and "img" not in p.tags
    assert not [a for a in p.attrs if a[1].startswith("on")]  # no event handler anywhere
    assert not [a for a in p.attrs if a[1] in ("src", "href")]  # nothing loaded from anywhere
    text = "".join(p.text)
    assert SCRIPT in text and "onerror=alert(1)" in text  # shown to the reader, as text


def test_render_survives_empty_inputs():
    page = render_report({}, None, {})
    assert page.startswith("<!DOCTYPE html>") and "collapseguard report" in page


def _screenshot_module():
    path = os.path.join(os.path.dirname(__file__), "..", "..", "bench", "screenshot_report.py")
    spec = importlib.util.spec_from_file_location("screenshot_report", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.skipif(not os.path.exists("/usr/bin/chromium"), reason="needs /usr/bin/chromium")
def test_chromium_runs_no_script(tmp_path):
    shot = _screenshot_module()
    html_path = tmp_path / "report.html"
    html_path.write_text(render(), encoding="utf-8")
    dom = shot.dump_dom(str(html_path))
    assert "<title>collapseguard report</title>" in dom  # loaded, title untouched
    assert shot.check_dom(dom) == []
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in dom
