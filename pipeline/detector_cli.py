"""`collapseguard train-classifier | calibrate | evaluate`: build and measure the detector.

All three score documents with the same code as `collapseguard run` (they run the stage
itself on the labeled file, with attestation fields switched off), so what is measured is
what a run does.

Labeled JSONL rows: id, text, label (human|synthetic), optional generator, domain, source,
group (rows sharing a group stay on one side of every split; without one, the first words
decide: labeled-dev's synthetic texts open with their human pair's words). `calibrate` holds
out whole sources and generator families (`models.calibration`); a row's source is its `source`
field, else its label, family and domain.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile

import numpy as np

from collapseguard.models import detector as D
from collapseguard.models import shipped_path
from collapseguard.models.classifier import DEFAULT_VIEW, check_view, train
from collapseguard.models.detector_build import build, corpus_from_rows, opens_like_a_human
from collapseguard.models.families import family
from collapseguard.pipeline.options import CliParser

LM_MAX_TOKENS = 128  # what the shipped detector is calibrated at (calibration.json: lm_max_tokens)


def load_labeled(paths: list[str]) -> list[dict]:
    rows, seen = [], set()
    for path in paths:
        with open(path, encoding="utf-8") as f:
            for line in f:
                r = json.loads(line)
                if r.get("label") not in ("human", "synthetic") or not isinstance(r.get("text"), str):
                    continue
                r["id"] = str(r.get("id") or f"{os.path.basename(path)}:{len(rows)}")
                if r["id"] in seen:
                    continue
                seen.add(r["id"])
                r["y"] = int(r["label"] == "synthetic")
                r["group"] = D.pair_group(r)
                rows.append(r)
    return rows


def score_with_stage(rows: list[dict], scoring_model: str, detector: str, lm_max_tokens: int = LM_MAX_TOKENS,
                     beam_args: list[str] | None = None, embedding: bool = False) -> list[dict]:
    """Runs `collapseguard run` on the rows' texts; returns the rows with every output column
    (`lm_embedding` too with `embedding`, when there is an LM)."""
    import glob

    import pyarrow.parquet as pq

    from collapseguard.pipeline.cli import run  # lazy: a cycle (cli dispatches to this module)

    work = tempfile.mkdtemp(prefix="cg-score-")
    try:
        src = os.path.join(work, "labeled.jsonl")
        with open(src, "w", encoding="utf-8") as f:
            for r in rows:
                f.write(json.dumps({"id": r["id"], "text": r["text"]}) + "\n")
        cfg = os.path.join(work, "config.yaml")
        with open(cfg, "w") as f:  # score everything the same way: no hold, no anchor
            f.write("entropy: {floor: 'off'}\nstratify: {anchor_fraction: 0.0}\n")
        out = os.path.join(work, "out")
        run(["--input", src, "--output", out, "--config", cfg, "--scoring-model", scoring_model,
             "--detector", detector, "--lm-max-tokens", str(lm_max_tokens)]
            + (["--write-lm-embedding"] if embedding and scoring_model != "none" else []) + (beam_args or []))
        scored = {}
        for p in glob.glob(os.path.join(out, "*", "*.parquet")):
            for r in pq.read_table(p).to_pylist():
                scored[r["id"]] = r
        merged = []
        for r in rows:
            s = scored.get(r["id"])
            if s is None:
                continue  # rejected by validation (e.g. empty text): not a scorable document
            m = dict(s)
            m.update({k: r[k] for k in ("y", "group", "label") if k in r})
            m.update({k: r.get(k) for k in ("domain", "generator", "source")})
            merged.append(D.derived_features(m))
        return merged
    finally:
        shutil.rmtree(work, ignore_errors=True)


_SCORE_KEYS = ("scoring_model", "lm_max_tokens", "lm_embedding")


def scored_rows(rows: list[dict], scoring_model: str, lm_max_tokens: int, beam_args: list[str] | None,
                cache: str | None) -> list[dict]:
    """`score_with_stage` (embeddings included, for the probe), through an optional JSONL cache
    of the scored rows.

    Scoring is the slow part (the LM); the fit is seconds. With `cache`, rows already scored
    there with the same scoring settings and the same text are reused and only the rest are
    scored; the cache is then rewritten (sorted by id, so it is deterministic).
    """
    settings = {"scoring_model": scoring_model, "lm_max_tokens": lm_max_tokens, "lm_embedding": True}
    done: dict[str, dict] = {}
    if cache and os.path.exists(cache):
        with open(cache, encoding="utf-8") as f:
            for line in f:
                r = json.loads(line)
                if all(r.get("_" + k) == settings[k] for k in _SCORE_KEYS):
                    done[r["id"]] = r
    fresh = [r for r in rows if done.get(r["id"], {}).get("text") != r["text"]]
    if fresh:
        for r in score_with_stage(fresh, scoring_model, "none", lm_max_tokens, beam_args, embedding=True):
            done[r["id"]] = {**r, **{"_" + k: settings[k] for k in _SCORE_KEYS}}
    out = []
    for r in rows:
        s = done.get(r["id"])
        if s is not None:  # not there: rejected by validation (e.g. empty text)
            m = {k: v for k, v in s.items() if not k.startswith("_")}
            m.update({k: r.get(k) for k in ("y", "group", "label", "domain", "generator", "source")})
            out.append(D.derived_features(m))
    if cache and fresh:
        tmp = cache + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            for k in sorted(done):
                f.write(json.dumps(done[k], sort_keys=True, default=str) + "\n")
        os.replace(tmp, cache)
    return out


def source_of(row: dict) -> str:
    """The row's `source` field, else human:<domain> or synthetic:<family>/<domain>."""
    if row.get("source"):
        return str(row["source"])
    if row["y"] and row.get("generator"):
        return f"synthetic:{family(str(row['generator']))}/{row.get('domain')}"
    return f"{'synthetic' if row['y'] else 'human'}:{row.get('domain')}"


def breakdown(rows: list[dict], y: np.ndarray, scores: np.ndarray, threshold: float | None) -> dict:
    """Metrics overall, per domain, per source (a synthetic source's texts vs all human texts;
    a human source's own figures), per generator and per generator family (its texts vs all
    human texts), and per length band (`length_masks`: the band's texts of both classes)."""
    res = D.metrics(y, scores, threshold)
    res["per_source"] = {}
    for s, m in source_masks(rows).items():
        res["per_source"][s] = D.metrics(y[m], scores[m], threshold)
    res["per_domain"] = {}
    for d in sorted({str(r.get("domain")) for r in rows}):
        m = np.array([str(r.get("domain")) == d for r in rows])
        res["per_domain"][d] = D.metrics(y[m], scores[m], threshold)
    res["per_generator"] = {}
    for g in sorted({r.get("generator") for r in rows if r["y"] and r.get("generator")}):
        m = np.array([r.get("generator") == g or r["y"] == 0 for r in rows])
        res["per_generator"][g] = D.metrics(y[m], scores[m], threshold)
    res["per_family"] = {}
    for f, m in family_masks(rows).items():
        res["per_family"][f] = D.metrics(y[m], scores[m], threshold)
    res["per_length"] = {b: D.metrics(y[m], scores[m], threshold) for b, m in length_masks(rows).items()}
    return res


def source_masks(rows: list[dict]) -> dict[str, np.ndarray]:
    """Source -> rows: a synthetic source's texts and every human text; a human source's texts."""
    src = [source_of(r) for r in rows]
    out = {}
    for s in sorted(set(src)):
        syn = any(k == s and r["y"] for k, r in zip(src, rows))
        out[s] = np.array([k == s or (syn and r["y"] == 0) for k, r in zip(src, rows)])
    return out


# Word-count bands of `evaluate`'s per_length: a global threshold that holds per source may still
# flag short texts (reviews, messages) more often than long ones; these show it on your own data.
LENGTH_BANDS = ((0, 50), (50, 100), (100, 200), (200, 400), (400, None))
BAND_NAMES = tuple(f"{lo}-{hi - 1}" if hi is not None else f"{lo}+" for lo, hi in LENGTH_BANDS)


def length_bands(n_words) -> np.ndarray:
    """Each word count's band name (`BAND_NAMES`: "0-49", ..., "400+")."""
    edges = [hi for _, hi in LENGTH_BANDS[:-1]]
    return np.array(BAND_NAMES, dtype=object)[np.searchsorted(edges, np.asarray(n_words), side="right")]


def length_masks(rows: list[dict]) -> dict[str, np.ndarray]:
    """Band name -> its rows, machine and human texts alike (the stage's `n_words`, else
    whitespace words); bands without rows are left out."""
    band = length_bands([r["n_words"] if isinstance(r.get("n_words"), int) else len(str(r.get("text", "")).split())
                         for r in rows])
    return {b: band == b for b in BAND_NAMES if (band == b).any()}


def family_masks(rows: list[dict]) -> dict[str, np.ndarray]:
    """Generator family -> rows of its texts and every human text (`models.families`)."""
    fams = [family(r["generator"]) if r["y"] and r.get("generator") else None for r in rows]
    return {f: np.array([g == f or r["y"] == 0 for g, r in zip(fams, rows)]) for f in sorted(set(fams) - {None})}


def evaluate(rows: list[dict], calibration: dict) -> dict:
    """Metrics of p_synthetic; precision/recall at the shipped threshold (the `full` model's
    for LM-scored rows, the `no_lm` model's for the others, as `run` applies them)."""
    y = np.array([r["y"] for r in rows])
    scores = np.array([r["p_synthetic"] if r.get("p_synthetic") is not None else 0.5 for r in rows])
    det = D.Detector(calibration)
    thr = np.array([det.threshold_for(r.get("lm_mean_logprob") is not None) for r in rows])
    # decisions as run makes them: p >= the row's threshold <=> (p - threshold) >= 0
    margin = scores - thr
    res = breakdown(rows, y, scores, None)
    res.update(D.precision_recall(y, margin, 0.0))
    for key, sub in (("per_domain", "domain"), ("per_generator", "generator")):
        for name, m in res[key].items():
            mask = np.array([str(r.get(sub)) == name or (sub == "generator" and r["y"] == 0) for r in rows])
            m.update(D._round(D.precision_recall(y[mask], margin[mask], 0.0)))
    for name, mask in family_masks(rows).items():
        res["per_family"][name].update(D._round(D.precision_recall(y[mask], margin[mask], 0.0)))
    for name, mask in source_masks(rows).items():  # a human source: "fpr" is its share flagged
        res["per_source"][name].update(D._round(D.precision_recall(y[mask], margin[mask], 0.0)))
    for name, mask in length_masks(rows).items():  # "fpr": the band's human texts flagged
        res["per_length"][name].update(D._round(D.precision_recall(y[mask], margin[mask], 0.0)))
    res["threshold"] = {"full": det.threshold_for(True), "no_lm": det.threshold_for(False)}
    names = list(D.FEATURES)
    x = D.feature_matrix(rows, names)
    res["single_signal_auroc"] = {}
    for j, n in enumerate(names):
        col = x[:, j]
        if np.isfinite(col).any():
            res["single_signal_auroc"][n] = D.auroc(y, np.where(np.isfinite(col), col, np.nanmean(col)))
    return D._round(res)


def main(command: str, argv: list[str]) -> int:
    ap = CliParser(prog=f"collapseguard {command}", allow_abbrev=False)
    ap.add_argument("--labeled", action="append", required=True, help="labeled JSONL (repeatable)")
    if command == "train-classifier":
        ap.add_argument("--view", default=DEFAULT_VIEW, type=check_view,
                        help="how the classifier reads text: 'words' or 'masked_top<K>' (models/classifier.py)")
        ap.add_argument("--output", required=True, help="folder for classifier.ftz")
        args = ap.parse_args(argv)

        rows = load_labeled(args.labeled)
        os.makedirs(args.output, exist_ok=True)
        cont = opens_like_a_human([r["text"] for r in rows], np.array([r["y"] for r in rows]))
        summary = train([(r["text"], r["y"]) for r, c in zip(rows, cont) if not c],
                        os.path.join(args.output, "classifier.ftz"), view=args.view)
        summary["inputs"] = [os.path.basename(p) for p in args.labeled]
        with open(os.path.join(args.output, "classifier.json"), "w") as f:
            json.dump(summary, f, indent=2, sort_keys=True)
        print(json.dumps(summary, sort_keys=True))
        return 0
    ap.add_argument("--scoring-model", default="default")
    ap.add_argument("--lm-max-tokens", type=int, default=LM_MAX_TOKENS)
    if command == "calibrate":
        ap.add_argument("--output", required=True,
                        help="detector folder to write: classifier.ftz, classifier.json, calibration.json "
                             "(use it as `run --detector DIR`); other files there are left alone")
        ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                        help="processes training the fastText models (default: one per CPU; the result is "
                             "the same for any number)")
        ap.add_argument("--scores", help="JSONL cache of scored rows: reused where it holds a document with the "
                        "same text and scoring settings, written back with the rest (refit without rescoring)")
        args, beam_args = ap.parse_known_args(argv)
        if args.jobs < 1:  # before the slow scoring
            ap.error(f"--jobs must be >= 1, got {args.jobs}")
        if os.path.isfile(args.output):
            ap.error(f"--output must be a folder (the detector's), got the file {args.output}")

        rows = scored_rows(load_labeled(args.labeled), args.scoring_model, args.lm_max_tokens, beam_args, args.scores)
        lm = args.lm_max_tokens if args.scoring_model != "none" else None
        cal = build(corpus_from_rows(rows), [r["text"] for r in rows], args.output, workers=args.jobs,
                    lm_max_tokens=lm, training_set={"inputs": [os.path.basename(p) for p in args.labeled],
                                                    "scoring_model": args.scoring_model})
        print(json.dumps({"threshold": cal["threshold"], "target_fpr": cal["target_fpr"], "selection": {
            k: {"chosen": v["chosen"]["name"], "threshold_rule": v["threshold_rule"]}
            for k, v in cal["selection"].items()}}, sort_keys=True))
        return 0
    if command == "evaluate":
        ap.add_argument("--calibration", help="calibration.json (default: the shipped one)")
        ap.add_argument("--classifier", help="classifier.ftz (default: the shipped one)")
        args, beam_args = ap.parse_known_args(argv)

        folder = tempfile.mkdtemp(prefix="cg-det-")
        calibration = None
        try:
            shutil.copy(args.calibration or os.path.join(shipped_path(), "calibration.json"),
                        os.path.join(folder, "calibration.json"))
            shutil.copy(args.classifier or os.path.join(shipped_path(), "classifier.ftz"),
                        os.path.join(folder, "classifier.ftz"))
            rows = score_with_stage(load_labeled(args.labeled), args.scoring_model, folder, args.lm_max_tokens,
                                    beam_args)
            with open(os.path.join(folder, "calibration.json"), encoding="utf-8") as f:
                calibration = json.load(f)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        print(json.dumps(evaluate(rows, calibration), sort_keys=True))
        return 0
    raise ValueError(command)
