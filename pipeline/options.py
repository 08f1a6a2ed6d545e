"""Command-line options: ours are validated here, Beam's pass through to Beam.

Any flag that is neither ours nor one Beam knows fails at once with a clear message (Beam
itself only logs "Discarding unparseable args" and runs on; see Beam #28402).
"""

from __future__ import annotations

import argparse
import difflib
import os

from apache_beam.options.pipeline_options import PipelineOptions, _BeamArgumentParser

from collapseguard.models import shipped_path

SCORING_NONE = "none"
SCORING_DEFAULT = "default"
DETECTOR_DEFAULT = "default"


def detector_paths(spec: str) -> tuple[str, str] | None:
    """(classifier, calibration) for --detector, or None for 'none'."""
    if spec == "none":
        return None
    folder = spec
    if spec == DETECTOR_DEFAULT:
        folder = shipped_path()
    paths = (os.path.join(folder, "classifier.ftz"), os.path.join(folder, "calibration.json"))
    missing = [p for p in paths if not os.path.exists(p)]
    if missing:
        raise UsageError(f"--detector {spec}: missing {', '.join(missing)}")
    return paths


class UsageError(ValueError):
    """Bad command line; the message says what to change."""


class CliParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line: it raises UsageError (the CLI prints
    `collapseguard: error: ...` and exits 2) instead of printing its whole usage block."""

    def error(self, message: str):
        raise UsageError(f"{message} (`{self.prog} --help` lists the options)")


def sample_dir() -> str:
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "sample")


def sample_inputs() -> str:
    return os.path.join(sample_dir(), "shards", "*")


def sample_config() -> str:
    return os.path.join(sample_dir(), "config.yaml")


def _all_option_classes(cls=PipelineOptions):
    for sub in cls.__subclasses__():
        yield sub
        yield from _all_option_classes(sub)


def beam_flag_names() -> set[str]:
    parser = _BeamArgumentParser(allow_abbrev=False)
    for cls in {c for c in _all_option_classes()}:
        try:
            cls._add_argparse_args(parser)
        except argparse.ArgumentError:
            pass  # the same flag declared by two option classes
    return {s for a in parser._actions for s in a.option_strings}


def validate_beam_args(args: list[str]) -> list[str]:
    """Returns args unchanged if every flag is a Beam pipeline flag; else raises UsageError."""
    known = beam_flag_names()
    for a in args:
        if not a.startswith("--"):
            continue
        name = a.split("=", 1)[0]
        if name not in known:
            close = difflib.get_close_matches(name, sorted(known | set(OUR_FLAGS)), n=3)
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            raise UsageError(f"unknown flag {name}.{hint} (run `collapseguard run --help` for ours; "
                             f"Beam's pipeline flags pass through)")
    PipelineOptions(args)  # Beam's own value checks
    return args


OUR_FLAGS = ("--input", "--output", "--config", "--scoring-model", "--detector", "--overwrite", "--resume", "--lm-max-tokens",
             "--lm-sample-rate", "--lm-cache-dir", "--write-lm-embedding")


def run_parser() -> argparse.ArgumentParser:
    p = CliParser(
        prog="collapseguard run",
        description="Tag provenance, audit shard entropy and write stratified Parquet. "
        "Any other --flag is passed to Beam (e.g. --runner, --direct_num_workers).",
        allow_abbrev=False,
    )
    p.add_argument("--input", help="comma-separated globs of shards on any fsspec URL "
                   "(jsonl, jsonl.gz, jsonl.zst, parquet); default: the embedded sample")
    p.add_argument("--output", default="collapseguard-out", help="output folder (any fsspec URL)")
    p.add_argument("--config", help="YAML config; default: built-in defaults "
                   "(the sample's config when --input is not given)")
    p.add_argument("--scoring-model", default=SCORING_DEFAULT,
                   help="'none' (no LM signals), 'default' (embedded SmolLM2-135M), or a local "
                   "folder / Hugging Face id of a causal LM")
    p.add_argument("--lm-max-tokens", type=int, default=128,
                   help="tokens scored per document (default 128: what the shipped detector is calibrated at)")
    p.add_argument("--lm-sample-rate", type=float, default=1.0,
                   help="fraction of documents LM-scored, chosen by hash of id (the rest get nulls)")
    p.add_argument("--lm-cache-dir", default=None, help="where the converted default model is cached")
    p.add_argument("--write-lm-embedding", action="store_true",
                   help="write each document's mean-pooled LM hidden state (lm_embedding, 576 float32 for the "
                   "default model) to the Parquet output, e.g. to fit a detector (calibrate uses it)")
    p.add_argument("--detector", default=DETECTOR_DEFAULT,
                   help="'default' (the shipped classifier + calibration), 'none', or a folder "
                   "holding classifier.ftz and calibration.json")
    p.add_argument("--overwrite", action="store_true",
                   help="replace outputs of an earlier run in --output")
    p.add_argument("--resume", action="store_true",
                   help="continue a killed run in --output: skip its committed shards")
    return p


def parse_run_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    ns, rest = run_parser().parse_known_args(argv)
    if ns.lm_max_tokens < 2:
        raise UsageError("--lm-max-tokens must be >= 2")
    if not 0.0 < ns.lm_sample_rate <= 1.0:
        raise UsageError("--lm-sample-rate must be in (0, 1]")
    if ns.write_lm_embedding and ns.scoring_model == SCORING_NONE:
        raise UsageError("--write-lm-embedding needs an LM: not with --scoring-model none")
    if not ns.output.strip():
        raise UsageError("--output is empty; name a folder (it is created if missing)")
    if ns.resume and ns.overwrite:
        raise UsageError("--resume and --overwrite exclude each other")
    if ns.input is None:
        ns.input = sample_inputs()
        if ns.config is None:
            ns.config = sample_config()
    ns.inputs = [s.strip() for s in ns.input.split(",") if s.strip()]
    if not ns.inputs:
        raise UsageError("--input is empty")
    return ns, validate_beam_args(rest)
