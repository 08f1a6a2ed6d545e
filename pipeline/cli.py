"""`collapseguard` console script.

  collapseguard run --input GLOB[,GLOB...] --output DIR [--config FILE.yaml]
                    [--scoring-model none|default|PATH_OR_ID] [any Beam pipeline flag]
  collapseguard monitor --model PATH_OR_DEFAULT --anchor DIR [--prompts N] [--baseline JSON]
"""

from __future__ import annotations

import json
import logging
import sys

import apache_beam as beam
import fsspec
from apache_beam.options.pipeline_options import PipelineOptions, SetupOptions, StandardOptions
from fsspec.core import url_to_fs

from collapseguard.core.schema import ALL_OUTPUTS
from collapseguard.pipeline import config as config_mod
from collapseguard.pipeline import monitor_cli
from collapseguard.pipeline.graph import build
from collapseguard.pipeline.options import UsageError, detector_paths, parse_run_args
from collapseguard.pipeline.outdir import OutputError, OutputLock, check_output, new_marker, prepare
from collapseguard.transforms.commit import fingerprint, fingerprint_parts
from collapseguard.transforms.manifest import versions
from collapseguard.transforms.read import InputError, Shard, expand_inputs
from collapseguard.transforms.resume import ResumeError, ResumeState, resume_state
from collapseguard.transforms.write import join

log = logging.getLogger("collapseguard")

USAGE = """usage: collapseguard <command> [options]

commands:
  run               run the stage (default input: the embedded sample corpus)
  train-classifier  train the fastText human/synthetic classifier on labeled JSONL
  calibrate         fit the combined detector and its threshold at a target FPR
  evaluate          score labeled JSONL with the detector; print metrics as JSON
  monitor           score a causal LM on a run's anchor split: perplexity by word-frequency band,
                    tail recall, diversity of its generations (monitor.json + monitor.html)

`collapseguard <command> --help` for a command's options.
"""

# Exit codes (README: "Exit codes"): orchestrators retry or alert on them.
EXIT_OK = 0
EXIT_NOT_CONSERVED = 1  # the manifest does not account for every record: a bug, report it
EXIT_USAGE = 2  # nothing ran: bad flag, config, input or --output (refused, locked, resume mismatch)
EXIT_SHARD_ERRORS = 3  # the run finished and wrote all it could read; some shards had read errors


def shard_versions(shards: list[Shard]) -> dict[str, list]:
    """Each shard's identity for the run fingerprint: [size, the store's generation / etag, or
    the modification time], so a resume notices a shard edited since its run (not only renamed)."""
    out = {}
    for s in shards:
        fs, path = url_to_fs(s.url)
        try:
            info = fs.info(path)
        except OSError:
            info = {}
        version = next((info[k] for k in ("generation", "etag", "ETag", "md5Hash", "mtime", "LastModified", "created")
                        if info.get(k) is not None), None)
        out[s.name] = [info.get("size", s.size), str(version) if version is not None else None]
    return out


def default_runner(options):
    """The runner when no --runner is given: Beam's FnApiRunner, built as Beam's DirectRunner
    builds it; None (Beam resolves --runner) otherwise.

    Since Beam 2.68 the DirectRunner first tries the Prism runner, which downloads a Go binary
    into ~/.apache_beam/cache/prism/bin (offline it leaves that folder behind, empty, and falls
    back to the FnApiRunner) and, online, runs the job on another engine than the one the tests
    check. Beam's notes (apache/beam#34612) advise pinning the FnApiRunner to opt out.
    """
    if options.view_as(StandardOptions).runner is not None:
        return None
    from apache_beam.portability.api import beam_provision_api_pb2
    from apache_beam.runners.portability.fn_api_runner import fn_runner
    from apache_beam.runners.portability.portable_runner import JobServiceHandle

    # the pipeline options ride in the provision info, as under the DirectRunner, so that
    # --direct_running_mode=multi_processing workers see them
    encoded = JobServiceHandle.encode_pipeline_options(options.get_all_options())
    return fn_runner.FnApiRunner(provision_info=fn_runner.ExtendedProvisionInfo(
        beam_provision_api_pb2.ProvisionInfo(pipeline_options=encoded)))


def run(argv: list[str]) -> dict:
    """Runs the stage; returns the manifest."""
    ns, beam_args = parse_run_args(argv)
    check_output(ns.output)
    cfg = config_mod.load(ns.config)
    shards = expand_inputs(ns.inputs, exclude=ns.output)
    detector = detector_paths(ns.detector)
    calibration = load_calibration(detector)
    # the LM pools a hidden state when asked to write it or when the detector's probe reads it
    lm = lm_transform(ns, embedding=ns.write_lm_embedding or bool(calibration and calibration.get("probe")))
    run_info = {
        "inputs": ns.inputs,
        "config": cfg.to_dict(),
        "scoring_model": ns.scoring_model,
        "lm_max_tokens": ns.lm_max_tokens if lm is not None else None,
        "lm_sample_rate": ns.lm_sample_rate if lm is not None else None,
        "detector": detector_info(detector, calibration),
        "write_lm_embedding": ns.write_lm_embedding,
    }
    try:  # the model's identity, read without loading it; a missing model fails here, at launch
        scorer_version = None
        if lm is not None:
            from collapseguard.models.causal_lm import model_version  # lazy: imports torch (~2 s) via apache_beam.ml

            scorer_version = model_version(ns.scoring_model)
    except FileNotFoundError as e:
        raise UsageError(f"--scoring-model {ns.scoring_model}: {e}") from e
    parts = fingerprint_parts(run_info, versions(), scorer_version, shard_versions(shards))
    run_fp = fingerprint(parts)
    with OutputLock(ns.output):
        removed = prepare(ns.output, ns.overwrite, ns.resume, new_marker(run_fp, parts, [s.key for s in shards]))
        if removed:
            log.info("collapseguard: removed %d file(s) of the earlier run in %s", removed, ns.output)
        resume = resume_state(ns.output, run_fp) if ns.resume else ResumeState()
        if resume.committed:
            log.info("collapseguard: resuming: %d chunk(s) of %d shard(s) already committed",
                     len(resume.committed), len(shards))
        options = PipelineOptions(beam_args)
        options.view_as(SetupOptions).save_main_session = False
        log.info("collapseguard: %d shard(s) -> %s", len(shards), ns.output)
        p = beam.Pipeline(runner=default_runner(options), options=options)
        build(p, cfg, shards, ns.output, run_info, lm_transform=lm,
              resume=resume,
              detector=detector, keep_embedding=ns.write_lm_embedding, run_fingerprint=run_fp)
        result = p.run()
        if options.view_as(StandardOptions).no_wait_until_finish or getattr(result, "has_job", True) is False:
            # submitted only (Flex Template launch, --no_wait_until_finish): nothing to read yet, and
            # the lock covers the launch only (the runner's job outlives this process)
            log.info("collapseguard: job submitted; %s/manifest.json appears when it finishes", ns.output)
            return None
        result.wait_until_finish()
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
    from collapseguard.transforms.lm_signals import ScoreWithLM  # lazy: imports torch (~2 s) via apache_beam.ml

    return ScoreWithLM(model=ns.scoring_model, max_tokens=ns.lm_max_tokens,
                       sample_rate=ns.lm_sample_rate, cache_dir=ns.lm_cache_dir, embedding=embedding)


def summary(manifest: dict, output: str) -> str:
    lines = [f"collapseguard: wrote {output}",
             f"  records read         {manifest['records_read']}",
             f"  rejected             {manifest['records_rejected']}  -> {output}/rejected/"]
    for name in ALL_OUTPUTS:
        n = manifest["records_by_stratum"][name]
        lines.append(f"  {name:<20} {n}  -> {output}/{name}/")
    errors = manifest.get("shards_with_errors") or []
    lines.append(f"  shards with errors   {len(errors)}")
    for x in errors[:20]:
        lines.append(f"    {x['shard']}: {x['error']}")
    if len(errors) > 20:
        lines.append(f"    ... {len(errors) - 20} more in {output}/manifest.json (shards_with_errors)")
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
        return EXIT_OK if argv else EXIT_USAGE
    command, rest = argv[0], argv[1:]
    try:
        if command == "run":
            manifest = run(rest)
            output = parse_run_args(rest)[0].output
            if manifest is None:
                print(f"collapseguard: job submitted; outputs will appear under {output}")
                return EXIT_OK
            print(summary(manifest, output))
            if not manifest["conserved"]:
                return EXIT_NOT_CONSERVED
            if manifest.get("shards_with_errors"):
                print(f"collapseguard: {len(manifest['shards_with_errors'])} shard(s) had read errors; everything "
                      f"readable was written (exit {EXIT_SHARD_ERRORS})", file=sys.stderr)
                return EXIT_SHARD_ERRORS
            return EXIT_OK
        if command == "monitor":
            return monitor_cli.main(rest)
        if command in ("train-classifier", "calibrate", "evaluate"):
            from collapseguard.pipeline import detector_cli  # lazy: a cycle (detector_cli runs the stage through cli.run)

            return detector_cli.main(command, rest)
        raise UsageError(f"unknown command {command!r} (commands: run, train-classifier, calibrate, evaluate, "
                         "monitor; `collapseguard --help` says what each does)")
    except (UsageError, config_mod.ConfigError, InputError, ResumeError, OutputError) as e:
        print(f"collapseguard: error: {e}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
