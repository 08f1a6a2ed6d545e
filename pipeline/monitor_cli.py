"""`collapseguard monitor`: the tail monitor (models/monitor.py) on a run's anchor split.

    collapseguard monitor --model default --anchor collapseguard-out [--prompts 16]
                          [--output collapseguard-monitor] [--baseline OLD/monitor.json]

Reads the anchor split's Parquet files (`--anchor` is a run's output folder or its `anchor/`
folder; any fsspec URL), scores the model on them, and writes `monitor.json` (one object) and
`monitor.html` (the report's style: inline SVG, no scripts) into `--output`. With
`--baseline`, an earlier `monitor.json` (the previous model generation's), the change of every
tracked metric is printed, kept in the JSON and drawn in the page.
"""

from __future__ import annotations

import argparse
import json
import sys

from collapseguard.models.monitor import compare, comparison_lines, run_monitor, settings_differ
from collapseguard.pipeline.options import CliParser, UsageError
from collapseguard.transforms.monitor_page import render_monitor
from collapseguard.transforms.write import join

FILES = ("monitor.json", "monitor.html")


def parser() -> argparse.ArgumentParser:
    p = CliParser(prog="collapseguard monitor", allow_abbrev=False,
                                description="Score a causal LM on the anchor split: perplexity per word-frequency "
                                "band, tail recall@k, and the diversity of its generations from anchor openings.")
    p.add_argument("--model", default="default",
                   help="'default' (embedded SmolLM2-135M), a .gguf file, a local model folder or a Hugging Face id")
    p.add_argument("--anchor", required=True, help="a run's output folder, or its anchor/ folder (Parquet files)")
    p.add_argument("--prompts", type=int, default=16, help="anchor openings the model continues (default 16)")
    p.add_argument("--output", default="collapseguard-monitor", help="folder for monitor.json and monitor.html")
    p.add_argument("--baseline", help="an earlier monitor.json to compare against")
    p.add_argument("--overwrite", action="store_true", help="replace monitor.json / monitor.html in --output")
    p.add_argument("--k", type=int, default=10, help="top-k of tail recall (default 10)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed of the generations (default 0)")
    p.add_argument("--prompt-words", type=int, default=24)
    p.add_argument("--continuation-words", type=int, default=48)
    p.add_argument("--max-doc-words", type=int, default=400, help="words scored per anchor document")
    p.add_argument("--max-tokens", type=int, default=512, help="model tokens per scored text (truncation)")
    p.add_argument("--cache-dir", default=None, help="where a converted GGUF model is cached")
    return p


def anchor_files(anchor: str) -> list[str]:
    """The anchor's Parquet files, sorted; `anchor` is a run's output folder or its anchor/."""
    from fsspec.core import url_to_fs

    fs, path = url_to_fs(anchor)
    if not fs.isdir(path):
        raise UsageError(f"--anchor {anchor}: no such folder")
    if fs.isdir(join(path, "anchor")):
        path = join(path, "anchor")
    files = sorted(f for f in fs.glob(join(path, "*.parquet")))
    if not files:
        raise UsageError(f"--anchor {anchor}: no anchor Parquet files there (run `collapseguard run` first; "
                         "a run with no verified-human documents has an empty anchor)")
    return [fs.unstrip_protocol(f) for f in files]


def read_anchor(files: list[str]) -> list[dict]:
    import fsspec
    import pyarrow.parquet as pq

    docs = []
    for f in files:
        with fsspec.open(f, "rb") as fh:
            table = pq.read_table(fh)
        cols = [c for c in ("id", "text", "lang") if c in table.column_names]
        if "text" not in cols:
            raise UsageError(f"{f}: no text column; is this an anchor split of collapseguard?")
        docs.extend(table.select(cols).to_pylist())
    return docs


def load_baseline(path: str | None) -> dict | None:
    if not path:
        return None
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError) as e:
        raise UsageError(f"--baseline {path}: cannot read it as JSON ({e.__class__.__name__})") from None
    if not isinstance(data, dict) or "monitor_version" not in data:
        raise UsageError(f"--baseline {path}: not a monitor.json")
    return data


def check_output(output: str, overwrite: bool) -> None:
    from fsspec.core import url_to_fs

    fs, path = url_to_fs(output)
    if fs.exists(path) and not fs.isdir(path):
        raise UsageError(f"--output {output} is a file; name a folder")
    existing = [n for n in FILES if fs.exists(join(path, n))]
    if existing and not overwrite:
        raise UsageError(f"--output {output} already holds {', '.join(existing)}; pass --overwrite to replace them")


def summary(result: dict, output: str, rows: list[dict] | None) -> str:
    ppl, gen = result["perplexity"]["all"], result["generation"]
    lines = [f"monitor: {result['model'].get('model', result['model'].get('kind'))} on "
             f"{result['anchor']['documents']} anchor documents ({result['anchor']['words_scored']:,} words scored)"]
    for band in ("head", "torso", "tail"):
        b = ppl[band]
        if b["words"]:
            lines.append(f"  {band:<6} perplexity {b['perplexity']:>12,.1f}   recall@{result['settings']['k']} "
                         f"{b['recall_at_k']:.3f}   ({b['words']:,} words)")
    m, h = gen["model"], gen["human"]
    if gen["prompts"]:
        lines.append(f"  generations ({gen['prompts']} prompts): distinct-2 {m['distinct_2']} (human {h['distinct_2']}), "
                     f"MSTTR {m['msttr']} (human {h['msttr']}), vocabulary {m['vocabulary']} (human {h['vocabulary']})")
    if rows is not None:
        differ = result["baseline"]["settings_differ"]
        lines.append("  against the baseline" + (f" (not like for like: {'; '.join(differ)})" if differ else "") + ":")
        lines.extend(comparison_lines(rows))
    lines.append(f"  written              {join(output, 'monitor.json')}, {join(output, 'monitor.html')}")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    ns = parser().parse_args(argv)
    if ns.prompts < 0 or ns.k < 1 or ns.prompt_words < 1 or ns.continuation_words < 1 or ns.max_doc_words < 2:
        raise UsageError("--prompts must be >= 0; --k, --prompt-words, --continuation-words >= 1; --max-doc-words >= 2")
    if ns.max_tokens < 2:
        raise UsageError("--max-tokens must be >= 2")
    files = anchor_files(ns.anchor)
    baseline = load_baseline(ns.baseline)
    check_output(ns.output, ns.overwrite)
    docs = read_anchor(files)

    from collapseguard.models.causal_lm import GenerativeLM, LMConfig  # lazy: torch, only once the arguments hold

    try:
        lm = GenerativeLM.load(LMConfig(model=ns.model, max_tokens=ns.max_tokens, cache_dir=ns.cache_dir))
    except (OSError, ValueError) as e:
        raise UsageError(f"--model {ns.model}: cannot load it ({str(e).splitlines()[0][:200]})") from None
    result = run_monitor(lm, docs, prompts=ns.prompts, prompt_words=ns.prompt_words,
                         continuation_words=ns.continuation_words, k=ns.k, seed=ns.seed,
                         max_doc_words=ns.max_doc_words)
    result["anchor"]["files"] = len(files)
    rows = None
    if baseline is not None:
        rows = compare(result, baseline)
        result["baseline"] = {"model": baseline.get("model"), "changes": rows,
                              "settings_differ": settings_differ(result, baseline)}
    write(ns.output, result)
    print(summary(result, ns.output, rows))
    return 0


def write(output: str, result: dict) -> None:
    from fsspec.core import url_to_fs

    fs, path = url_to_fs(output)
    fs.makedirs(path, exist_ok=True)
    with fs.open(join(path, "monitor.json"), "w", encoding="utf-8") as f:
        json.dump(result, f, indent=2, sort_keys=True, ensure_ascii=False)
        f.write("\n")
    with fs.open(join(path, "monitor.html"), "w", encoding="utf-8") as f:
        f.write(render_monitor(result))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
