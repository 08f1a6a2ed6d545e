"""`collapseguard` console script.

  collapseguard run --input GLOB[,GLOB...] --output DIR [--config FILE.yaml]
                    [--scoring-model none|default|PATH_OR_ID] [any Beam pipeline flag]
"""

from __future__ import annotations

import json
import logging
import sys

from collapseguard.pipeline import config as config_mod
from collapseguard.pipeline.options import UsageError, detector_paths, parse_run_args
from collapseguard.transforms.commit import ResumeError, clean_temp_files, fingerprint, resume_state
from collapseguard.transforms.read import InputError

log = logging.getLogger("collapseguard")

USAGE = """usage: collapseguard <command> [options]

commands:
  run               run the stage (default input: the embedded sample corpus)
  train-classifier  train the fastText human/synthetic classifier on labeled JSONL
  calibrate         fit the combined detector and its threshold at a target FPR
  evaluate          score labeled JSONL with the detector; print metrics as JSON

`collapseguard <command> --help` for a command's options.
"""

# Folders and files a run owns inside --output.
OWNED = ("anchor", "human_verified", "human_unverified", "synthetic_known", "synthetic_suspected",
         "review", "rejected", "manifest.json", "mixture.json", "report.html", "_commits")


def prepare_output(output: str, overwrite: bool, resume: bool = False) -> None:
    """Refuses to mix two runs' files; --overwrite removes the earlier run's outputs, --resume
    keeps them (and removes only half-written temp files)."""
    from fsspec.core import url_to_fs

    fs, path = url_to_fs(output)
    if resume:
        n = clean_temp_files(output)
        if n:
            log.info("collapseguard: removed %d half-written temp file(s) of the killed run", n)
        fs.makedirs(path, exist_ok=True)
        return
    present = [name for name in OWNED if fs.exists(f"{path.rstrip('/')}/{name}")]
    if present and not overwrite:
        raise UsageError(f"--output {output} already holds a run ({', '.join(present)}); "
                         f"pass --overwrite to replace it or --resume to continue it")
    for name in present:
        fs.rm(f"{path.rstrip('/')}/{name}", recursive=True)
    fs.makedirs(path, exist_ok=True)


def run(argv: list[str]) -> dict:
    """Runs the stage; returns the manifest."""
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions, SetupOptions, StandardOptions

    from collapseguard.pipeline.graph import build
    from collapseguard.transforms.read import expand_inputs
    from collapseguard.transforms.write import join

    ns, beam_args = parse_run_args(argv)
    cfg = config_mod.load(ns.config)
    shards = expand_inputs(ns.inputs)
    detector = detector_paths(ns.detector)
    calibration = load_calibration(detector)
    # the LM pools a hidden state when asked to write it or when the detector's probe reads it
    lm = lm_transform(ns, embedding=ns.write_lm_embedding or bool(calibration and calibration.get("probe")))
    run_info = {
        "inputs": ns.inputs,
        "config": cfg.to_dict(),
        "scoring_model": ns.scoring_model,
        "detector": detector_info(detector, calibration),
        "write_lm_embedding": ns.write_lm_embedding,
    }
    committed, committed_floor, committed_ramp = (
        resume_state(ns.output, fingerprint(run_info)) if ns.resume else ({}, None, None))
    prepare_output(ns.output, ns.overwrite, ns.resume)
    if committed:
        log.info("collapseguard: resuming: %d of %d shard(s) already committed", len(committed), len(shards))
    options = PipelineOptions(beam_args)
    options.view_as(SetupOptions).save_main_session = False
    log.info("collapseguard: %d shard(s) -> %s", len(shards), ns.output)
    p = beam.Pipeline(options=options)
    build(p, cfg, shards, ns.output, run_info, lm_transform=lm,
          committed=committed, committed_floor=committed_floor, committed_ramp=committed_ramp,
          detector=detector, keep_embedding=ns.write_lm_embedding)
    result = p.run()
    if options.view_as(StandardOptions).no_wait_until_finish or getattr(result, "has_job", True) is False:
        # submitted only (Flex Template launch, --no_wait_until_finish): nothing to read yet
        log.info("collapseguard: job submitted; %s/manifest.json appears when it finishes", ns.output)
        return None
    result.wait_until_finish()
    import fsspec

    with fsspec.open(join(ns.output, "manifest.json"), "rt") as f:
        return json.load(f)


def load_calibration(paths) -> dict | None:
    """The detector's calibration JSON (read once at launch), or None without a detector."""
    if paths is None:
        return None
    with open(paths[1], encoding="utf-8") as f:
        return json.load(f)


def detector_info(paths, c: dict | None) -> dict | None:
    """What the manifest records of the detector (`c`: its calibration): file hashes and the
    thresholds."""
    if paths is None:
        return None
    import hashlib

    clf, cal = paths
    return {"classifier_sha256": hashlib.sha256(open(clf, "rb").read()).hexdigest()[:16],
            "calibration_sha256": hashlib.sha256(open(cal, "rb").read()).hexdigest()[:16],
            "target_fpr": c.get("target_fpr"),
            "thresholds": {k: m["threshold"] for k, m in c.get("models", {}).items()}}


def lm_transform(ns, embedding: bool = False):
    """The LM-scoring transform for --scoring-model, or None for 'none'."""
    if ns.scoring_model == "none":
        return None
    try:
        from collapseguard.transforms.lm_signals import ScoreWithLM
    except ImportError as e:  # pragma: no cover - packaging error
        raise UsageError(f"--scoring-model {ns.scoring_model}: LM scoring unavailable ({e})") from e
    return ScoreWithLM(model=ns.scoring_model, max_tokens=ns.lm_max_tokens,
                       sample_rate=ns.lm_sample_rate, cache_dir=ns.lm_cache_dir, embedding=embedding)


def summary(manifest: dict, output: str) -> str:
    lines = [f"collapseguard: wrote {output}",
             f"  records read         {manifest['records_read']}",
             f"  rejected             {manifest['records_rejected']}  -> {output}/rejected/"]
    from collapseguard.pipeline.schema import ALL_OUTPUTS

    for name in ALL_OUTPUTS:
        n = manifest["records_by_stratum"][name]
        lines.append(f"  {name:<20} {n}  -> {output}/{name}/")
    e = manifest["entropy"]
    lines.append(f"  entropy floor        {e['floor_bits']} bits ({e['floor_source']}); "
                 f"held shards: {len(manifest['shards_held_for_review'])}")
    lines.append(f"  conserved            {manifest['conserved']}")
    lines.append(f"  report (open first)  {output}/report.html")
    lines.append(f"  mixture              {output}/mixture.json")
    lines.append(f"  manifest             {output}/manifest.json")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("apache_beam").setLevel(logging.WARNING)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    try:
        if command == "run":
            manifest = run(rest)
            output = parse_run_args(rest)[0].output
            if manifest is None:
                print(f"collapseguard: job submitted; outputs will appear under {output}")
                return 0
            print(summary(manifest, output))
            return 0 if manifest["conserved"] else 1
        if command in ("train-classifier", "calibrate", "evaluate"):
            from collapseguard.pipeline import detector_cli

            return detector_cli.main(command, rest)
        raise UsageError(f"unknown command {command!r}\n{USAGE}")
    except (UsageError, config_mod.ConfigError, InputError, ResumeError) as e:
        print(f"collapseguard: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
