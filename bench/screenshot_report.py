"""Render report.html to PNG with headless Chromium (when /usr/bin/chromium exists).

    .venv/bin/python bench/screenshot_report.py DIR/report.html out.png
    .venv/bin/python bench/screenshot_report.py --demo /tmp/cg-demo      # builds a demo report first
    .venv/bin/python bench/screenshot_report.py --demo /tmp/cg-real --from-run collapseguard-out

`--demo` renders a report from a realistic fake run (generated records with hostile source,
shard and id names such as `<script>alert(1)</script>`), writes report.html, report.png and
report.dom.html (Chromium's DOM after load), and checks that no script ran: the DOM must hold
no <script> element, no on* attribute, and the hostile names only as escaped text.

Chromium runs with a fresh profile, no network features, no sandbox (containers), no GPU.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile

CHROMIUM = "/usr/bin/chromium"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync")
HOSTILE = ("<script>alert(1)</script>", '"><img src=x onerror=alert(1)>')


def chromium() -> str | None:
    return CHROMIUM if os.path.exists(CHROMIUM) else shutil.which("chromium")


def _run(args: list[str], timeout: int) -> subprocess.CompletedProcess:
    exe = chromium()
    if exe is None:
        raise FileNotFoundError("chromium not found (apt-get install -y chromium)")
    with tempfile.TemporaryDirectory(prefix="cg-chromium-") as profile:
        return subprocess.run([exe, *FLAGS, f"--user-data-dir={profile}", *args],
                              capture_output=True, text=True, timeout=timeout)


def screenshot(html_path: str, png_path: str, width: int = 1200, height: int = 3000, timeout: int = 60) -> str:
    """Writes a PNG of the page; returns png_path."""
    url = "file://" + os.path.abspath(html_path)
    proc = _run([f"--screenshot={os.path.abspath(png_path)}", f"--window-size={width},{height}",
                 "--hide-scrollbars", url], timeout)
    if not os.path.exists(png_path):
        raise RuntimeError(f"chromium wrote no screenshot (rc {proc.returncode}): {proc.stderr[-2000:]}")
    return png_path


def dump_dom(html_path: str, timeout: int = 60) -> str:
    """The DOM after load, as Chromium serialises it (scripts, had any run, would show here)."""
    url = "file://" + os.path.abspath(html_path)
    return _run(["--dump-dom", url], timeout).stdout


def check_dom(dom: str) -> list[str]:
    """Problems found in a dumped DOM: script elements, event-handler attributes, raw hostile text."""
    from html.parser import HTMLParser

    problems = []

    class P(HTMLParser):
        def handle_starttag(self, tag, attrs):
            if tag == "script":
                problems.append("script element")
            if tag == "img":
                problems.append("img element")
            for name, _ in attrs:
                if name.startswith("on"):
                    problems.append(f"event handler attribute {name} on <{tag}>")

    P().feed(dom)
    if "<script>alert(1)" in dom:
        problems.append("unescaped <script> text")
    return problems


# --- demo data ----------------------------------------------------------------------------------


def demo_inputs(seed: int = 7, n_docs: int = 3000):
    """(manifest, mixture, stats) of a fake but realistic run, built with the real CombineFns."""
    from collapseguard.transforms.diversity import DiversityStats
    from collapseguard.transforms.mixture import (
        MixtureStats, RareCoverageSample, build_mixture, human_and_synthetic_tokens)
    from collapseguard.transforms.report import ReportStats
    from collapseguard.transforms.weights import (
        WeightsConfig, count_density, human_weight, rarity_ramp, sample_weight, synthetic_weight)

    rng = random.Random(seed)
    words = ("the of and to in is was for on that with as by at from his her it an were which are this "
             "river council budget lichen algae fungus cathedral orbit comet harbour verdict molecule "
             "sonnet glacier estuary parliament ferry quarry tannery saffron basalt heron").split()
    rare = sorted({"".join(rng.choice("aeioubcdfghklmnprstvz") for _ in range(rng.randint(6, 11)))
                   for _ in range(4000)})  # stand-ins for rare words
    sources = ["arxiv", "gutenberg", "bbc-news", "wikipedia", "reddit-writingprompts", "web-crawl-2024",
               "seo-pages", "gpt-j-6B-dump", HOSTILE[0], HOSTILE[1]] + [f"forum-{i:02d}.example" for i in range(40)]
    shards = [f"crawl/part-{i:05d}.jsonl.zst" for i in range(24)] + [f"odd/{HOSTILE[0]}.jsonl", f"odd/{HOSTILE[1]}.jsonl"]
    cfg = WeightsConfig(source_multipliers={"arxiv": 1.5, "gutenberg": 2.0})
    records = []
    for i in range(n_docs):
        src = rng.choice(sources[:10]) if rng.random() < 0.8 else rng.choice(sources)
        prov = rng.choices(["verified_human", "unverified_human", "known_synthetic", "suspected_synthetic"],
                           [5, 6, 1, 1])[0]
        if src == "gpt-j-6B-dump":
            prov = "known_synthetic"
        stratum = {"verified_human": "human_verified", "unverified_human": "human_unverified",
                   "known_synthetic": "synthetic_known", "suspected_synthetic": "synthetic_suspected"}[prov]
        if prov == "verified_human" and rng.random() < 0.05:
            stratum = "anchor"
        shard = shards[i % len(shards)]
        if shard.startswith("crawl/part-0000") and rng.random() < 0.9:
            stratum = "review"
        synthetic = prov.endswith("synthetic")
        n = rng.randint(60, 900)
        tail = rng.random() * (0.01 if synthetic else 0.12)
        toks = [rng.choice(rare) if rng.random() < tail else rng.choice(words) for _ in range(n)]
        rwf = sum(t in rare for t in toks) / n
        rec = {"id": HOSTILE[i % 2] + str(i) if i % 97 == 0 else f"doc-{i}", "shard": shard, "source": src,
               "provenance": prov, "stratum": stratum, "text": " ".join(toks), "n_words": n, "lang": "en",
               "ttr": min(1, max(0, rng.gauss(0.55 if synthetic else 0.68, 0.06))),
               "burstiness": max(0, rng.gauss(0.35 if synthetic else 0.6, 0.15)),
               "token_entropy_bits": rng.gauss(5.7 if synthetic else 6.1, 0.2),
               "repetition": max(0, rng.gauss(0.08 if synthetic else 0.03, 0.02)),
               "rare_word_fraction": rwf, "rare_word_density": len({t for t in toks if t in rare}) / n,
               "mean_zipf": rng.gauss(4.4 if synthetic else 4.1, 0.3),
               "p_synthetic": min(1, max(0, rng.gauss(0.8 if synthetic else 0.15, 0.15))),
               "lm_mean_logprob": rng.gauss(-2.2 if synthetic else -3.4, 0.4) if i % 3 == 0 else None,
               "lm_fdg_curvature": rng.gauss(3.0 if synthetic else 0.5, 0.8) if i % 3 == 0 else None,
               "lm_mean_entropy": rng.gauss(2.4 if synthetic else 3.3, 0.4) if i % 3 == 0 else None,
               "_rare": sorted({t for t in toks if t in rare})}
        records.append(rec)

    def combine(fn, elements):
        acc = fn.create_accumulator()
        for e in elements:
            acc = fn.add_input(acc, e)
        return fn.extract_output(fn.merge_accumulators([acc]))

    hist: dict[int, int] = {}
    for r in records:
        count_density(hist, r)
    ramp = rarity_ramp(cfg, hist)
    first = combine(MixtureStats(), [(r["stratum"], r["n_words"], human_weight(r, cfg, ramp)) for r in records])
    h, s = human_and_synthetic_tokens(first)
    w_syn = synthetic_weight(h, s, cfg.synthetic_ceiling)
    for r in records:
        r["sample_weight"] = sample_weight(r, cfg, w_syn, ramp)
    mix = combine(MixtureStats(), [(r["stratum"], r["n_words"], r["sample_weight"]) for r in records])
    cov = combine(RareCoverageSample(max_docs=1000),
                  [(r["id"], r["stratum"], r["n_words"], r["sample_weight"], r["_rare"]) for r in records])
    mixture = build_mixture(mix["tokens"], mix["weighted_tokens"], cov, cfg.synthetic_ceiling)
    stats = combine(ReportStats(), records)
    by_stratum: dict[str, list] = {}
    for r in records:
        by_stratum.setdefault(r["stratum"], []).append((r["id"], r["text"]))
    stats["diversity"] = {k: combine(DiversityStats(max_docs=200), v) for k, v in sorted(by_stratum.items())}

    shard_stats = []
    for j, name in enumerate(shards):
        held = name.startswith("crawl/part-0000")
        med = rng.uniform(4.2, 5.8) if held else rng.uniform(6.0, 6.9)
        shard_stats.append({"shard": name, "shard_key": f"k{j}", "records_read": 120, "records_rejected": 2,
                            "rejected_by_reason": {"invalid_json": 2}, "error": None,
                            "records_by_stratum": {},
                            "entropy": {"windows": rng.randint(200, 900), "entropy_median_bits": round(med, 6),
                                        "entropy_mean_bits": round(med - 0.05, 6), "below_floor": held,
                                        "audited": True}})
    shard_stats.append({"shard": "empty.jsonl", "shard_key": "e", "records_read": 0, "records_rejected": 0,
                        "rejected_by_reason": {}, "error": None, "records_by_stratum": {},
                        "entropy": {"windows": 0, "entropy_median_bits": None, "entropy_mean_bits": None,
                                    "below_floor": False, "audited": False}})
    by = stats["by_stratum"]
    manifest = {
        "manifest_version": 1, "records_read": n_docs + 52, "records_rejected": 52,
        "rejected_by_reason": {"invalid_json": 48, "duplicate_id": 3, HOSTILE[0]: 1},
        "records_by_stratum": {k: by.get(k, 0) for k in ("anchor", "human_verified", "human_unverified",
                                                          "synthetic_known", "synthetic_suspected", "review")},
        "conserved": True, "shards_total": len(shard_stats),
        "shards_with_errors": [{"shard": shards[-1], "error": f"truncated gzip {HOSTILE[1]}"}],
        "shards_held_for_review": [s["shard"] for s in shard_stats if s["entropy"]["below_floor"]],
        "entropy": {"floor_bits": 5.912, "floor_source": "calibrated", "calibration_windows": 4821,
                    "quantile": 0.05},
        "shards": sorted(shard_stats, key=lambda s: s["shard"]),
        "versions": {"collapseguard": "0.1.0", "apache_beam": "2.77.0", "python": "3.11"},
    }
    return manifest, mixture, stats


def inputs_from_run(run_dir: str, cfg=None):
    """(manifest, mixture, stats) for an existing run folder (manifest.json + stratum Parquet),
    computed in plain Python the way the Beam graph does it: rarity, two-pass weights, then the
    four CombineFns. A reference for the wiring, and a report of real data."""
    import glob
    import json

    import pyarrow.parquet as pq

    from collapseguard.core.schema import ALL_OUTPUTS
    from collapseguard.transforms.diversity import DiversityStats
    from collapseguard.transforms.mixture import (
        MixtureStats, RareCoverageSample, build_mixture, human_and_synthetic_tokens)
    from collapseguard.transforms.report import ReportStats
    from collapseguard.transforms.signals import tokenize
    from collapseguard.transforms.weights import (
        RarityTables, WeightsConfig, doc_rarity, human_weight, sample_weight, synthetic_weight)

    cfg = cfg or WeightsConfig()
    with open(os.path.join(run_dir, "manifest.json"), encoding="utf-8") as f:
        manifest = json.load(f)
    tables = RarityTables(cfg.stopwords_top_n)
    records = []
    for name in ALL_OUTPUTS:
        for path in sorted(glob.glob(os.path.join(run_dir, name, "*.parquet"))):
            for rec in pq.read_table(path).to_pylist():
                rar = doc_rarity(tokenize(rec["text"]), rec.get("lang"), tables, cfg.rare_zipf, cfg.min_rare_len)
                rec["mean_zipf"], rec["_rare"] = rar["mean_zipf"], rar["rare_words"]
                records.append(rec)

    def combine(fn, elements):
        acc = fn.create_accumulator()
        for e in elements:
            acc = fn.add_input(acc, e)
        return fn.extract_output(acc)

    ramp = (manifest.get("weights") or {}).get("rarity_ramp")  # the run's own; None: the fixed one
    first = combine(MixtureStats(), [(r["stratum"], r["n_words"], human_weight(r, cfg, ramp)) for r in records])
    w_syn = synthetic_weight(*human_and_synthetic_tokens(first), cfg.synthetic_ceiling)
    for r in records:
        r["sample_weight"] = sample_weight(r, cfg, w_syn, ramp)
    mix = combine(MixtureStats(), [(r["stratum"], r["n_words"], r["sample_weight"]) for r in records])
    cov = combine(RareCoverageSample(),
                  [(r["id"], r["stratum"], r["n_words"], r["sample_weight"], r["_rare"]) for r in records])
    mixture = build_mixture(mix["tokens"], mix["weighted_tokens"], cov, cfg.synthetic_ceiling)
    stats = combine(ReportStats(), records)
    by_stratum: dict[str, list] = {}
    for r in records:
        by_stratum.setdefault(r["stratum"], []).append((r["id"], r["text"]))
    stats["diversity"] = {k: combine(DiversityStats(), v) for k, v in sorted(by_stratum.items())}
    return manifest, mixture, stats


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("html", nargs="?", help="report.html to render")
    ap.add_argument("png", nargs="?", help="output PNG")
    ap.add_argument("--demo", metavar="DIR", help="render a demo report into DIR and screenshot it")
    ap.add_argument("--from-run", metavar="RUN", help="with --demo: report on this run folder's outputs "
                    "(manifest.json + Parquet) instead of generated data")
    ap.add_argument("--width", type=int, default=1200)
    ap.add_argument("--height", type=int, default=3000)
    args = ap.parse_args(argv)
    if chromium() is None:
        print("chromium not found: nothing to do (apt-get install -y chromium)", file=sys.stderr)
        return 0
    if args.demo:
        from collapseguard.transforms.report import render_report

        os.makedirs(args.demo, exist_ok=True)
        html_path = os.path.join(args.demo, "report.html")
        with open(html_path, "w", encoding="utf-8") as f:
            f.write(render_report(*(inputs_from_run(args.from_run) if args.from_run else demo_inputs())))
        png = screenshot(html_path, os.path.join(args.demo, "report.png"), args.width, args.height)
        dom = dump_dom(html_path)
        with open(os.path.join(args.demo, "report.dom.html"), "w", encoding="utf-8") as f:
            f.write(dom)
        problems = check_dom(dom)
        print(f"wrote {html_path} and {png}; DOM check: {'ok' if not problems else problems}")
        return 1 if problems else 0
    if not (args.html and args.png):
        ap.error("give HTML and PNG paths, or --demo DIR")
    print(screenshot(args.html, args.png, args.width, args.height))
    return 0


if __name__ == "__main__":
    sys.exit(main())
