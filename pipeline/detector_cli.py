"""`collapseguard train-classifier | calibrate | evaluate`: build and measure the detector.

All three score documents with the same code as `collapseguard run` (they run the stage
itself on the labeled file, with attestation fields switched off), so what is measured is
what a run does.

Labeled JSONL rows: id, text, label (human|synthetic), optional generator, domain, group
(rows sharing a group stay on one side of every split; without one, the first words decide:
labeled-dev's synthetic texts open with their human pair's words).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import tempfile

import numpy as np

from collapseguard.models import detector as D
from collapseguard.models.classifier import DEFAULT_VIEW, check_view
from collapseguard.models.families import family


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


def score_with_stage(rows: list[dict], scoring_model: str, detector: str, lm_max_tokens: int = 512,
                     beam_args: list[str] | None = None, embedding: bool = False) -> list[dict]:
    """Runs `collapseguard run` on the rows' texts; returns the rows with every output column
    (`lm_embedding` too with `embedding`, when there is an LM)."""
    import glob

    import pyarrow.parquet as pq

    from collapseguard.pipeline.cli import run

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
            m["domain"] = r.get("domain")
            m["generator"] = r.get("generator")
            merged.append(D.derived_features(m))
        return merged
    finally:
        shutil.rmtree(work, ignore_errors=True)


def is_continuation(rows: list[dict]) -> np.ndarray:
    """Synthetic rows that share their pair group with a human row: continuations of it."""
    human_groups = {r["group"] for r in rows if r["y"] == 0}
    return np.array([r["y"] == 1 and r["group"] in human_groups for r in rows], dtype=bool)


def synthetic_kinds(rows: list[dict]) -> np.ndarray:
    """Each row's synthetic kind for the detector's heads (models.detector): "continuation" for
    a synthetic text continuing a human one, "prompted" for one a model wrote from a prompt
    alone (chat-style); human rows get "" (unused)."""
    cont = is_continuation(rows)
    return np.array(["" if r["y"] == 0 else ("continuation" if c else "prompted") for r, c in zip(rows, cont)])


def classifier_training_rows(rows: list[dict]) -> list[tuple[str, int]]:
    """(text, label) pairs the fastText classifier learns from.

    Continuations are left out: a synthetic text that shares its pair group with a human text
    (labeled-dev's GPT-2-era rows) opens with that human's own words and is mostly prompted
    human text; taught those as "synthetic", the classifier learns little of what generated text
    looks like. It learns from human texts and from texts a model wrote from a prompt alone
    (chat-style generations); continuations still train the combined detector, whose LM signals
    are what catch them. Measured (leave-domains-out, chat texts vs unseen human domains):
    AUROC 0.73 trained on everything, 0.87 without continuations (same settings).
    """
    cont = is_continuation(rows)
    return [(r["text"], r["y"]) for r, c in zip(rows, cont) if not c]


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
            m.update({k: r.get(k) for k in ("y", "group", "label", "domain", "generator")})
            out.append(D.derived_features(m))
    if cache and fresh:
        tmp = cache + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            for k in sorted(done):
                f.write(json.dumps(done[k], sort_keys=True, default=str) + "\n")
        os.replace(tmp, cache)
    return out


def run_classifier_jobs(jobs: list[tuple], workers: int = 1) -> list[list[float]]:
    """Runs `classifier.train_and_predict` jobs, in `workers` processes when > 1 (spawned: the
    parent may hold torch threads). Results come back in job order and each job is
    deterministic, so the output is the same for any `workers`."""
    from collapseguard.models.classifier import train_and_predict

    if workers <= 1 or len(jobs) <= 1:
        return [train_and_predict(j) for j in jobs]
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=min(workers, len(jobs)),
                             mp_context=multiprocessing.get_context("spawn")) as pool:
        return list(pool.map(train_and_predict, jobs))


def _oof_jobs(rows: list[dict], folds: np.ndarray, view: str) -> tuple[list[tuple], list[np.ndarray]]:
    jobs, where = [], []
    for f in np.unique(folds):
        idx = np.flatnonzero(folds == f)
        jobs.append((classifier_training_rows([r for r, k in zip(rows, folds) if k != f]),
                     [rows[i]["text"] for i in idx], view))
        where.append(idx)
    return jobs, where


def _clf_oof(rows: list[dict], folds: np.ndarray, view: str, workers: int = 1) -> np.ndarray:
    """Out-of-fold classifier probabilities (a fastText model per fold)."""
    jobs, where = _oof_jobs(rows, folds, view)
    out = np.zeros(len(rows))
    for idx, probs in zip(where, run_classifier_jobs(jobs, workers)):
        out[idx] = probs
    return out


class Embeddings:
    """The rows' `lm_embedding` as one matrix, and which rows the probe may learn from: human
    texts and texts a model wrote from a prompt (continuations are left out, for the reason
    `classifier_training_rows` gives)."""

    def __init__(self, rows: list[dict]):
        self.e, self.ok = D.embedding_matrix(rows)
        self.y = np.array([r["y"] for r in rows])
        self.learn = self.ok & ~is_continuation(rows)

    def __bool__(self) -> bool:
        return bool(self.ok.any())

    def fit(self, train: np.ndarray) -> dict | None:
        m = train & self.learn
        if not m.any() or self.y[m].min() == self.y[m].max():
            return None
        return D.fit_probe(self.e[m], self.y[m])

    def scores(self, train: np.ndarray, test: np.ndarray) -> np.ndarray:
        """Log-odds of the `test` rows (NaN where none) from a probe fitted on `train`."""
        probe = self.fit(train)
        if probe is None:
            return np.full(int(test.sum()), np.nan)
        return D.probe_apply(probe, self.e[test], self.ok[test])

    def oof(self, folds: np.ndarray, within: np.ndarray | None = None) -> np.ndarray:
        """Out-of-fold log-odds of the rows in `within` (default all; NaN elsewhere)."""
        within = np.ones(len(folds), dtype=bool) if within is None else within
        out = np.full(len(folds), np.nan)
        for f in np.unique(folds[within]):
            test = within & (folds == f)
            out[test] = self.scores(within & (folds != f), test)
        return out


def _set_probe(rows: list[dict], scores: np.ndarray, where: np.ndarray | None = None) -> None:
    for i in (np.flatnonzero(where) if where is not None else range(len(rows))):
        rows[i][D.PROBE_FEATURE] = float(scores[i]) if np.isfinite(scores[i]) else None


def _fit_held_out(rows: list[dict], y: np.ndarray, train_mask: np.ndarray, test: np.ndarray, names,
                  view: str, kinds: np.ndarray, workers: int = 1,
                  emb: Embeddings | None = None) -> tuple[np.ndarray, list[dict]]:
    """Scores of the `test` rows from a detector (classifier and probe included) fitted on
    `train_mask` only, and the rows with the classifier and probe features of that fit."""
    groups = np.array([r["group"] for r in rows])
    tr_idx, te_idx = np.flatnonzero(train_mask), np.flatnonzero(test)
    # the classifier feature of training rows must be out-of-fold too: 5 models for those, one
    # model on all training rows for the test rows, trained together
    jobs, where = _oof_jobs([rows[i] for i in tr_idx], D.group_folds(groups[tr_idx], 5), view)
    jobs.append((classifier_training_rows([rows[i] for i in tr_idx]), [rows[i]["text"] for i in te_idx], view))
    results = run_classifier_jobs(jobs, workers)
    sub = [dict(r) for r in rows]
    for idx, probs in zip(where, results[:-1]):
        for i, p in zip(tr_idx[idx], probs):
            sub[i][D.CLF_FEATURE] = float(p)
    for i, p in zip(te_idx, results[-1]):
        sub[i][D.CLF_FEATURE] = p
    if emb:  # the probe likewise: out-of-fold on the training rows, fitted on all of them for the test
        probe = np.full(len(rows), np.nan)
        probe[train_mask] = emb.oof(D.group_folds(groups, 5), within=train_mask)[train_mask]
        probe[test] = emb.scores(train_mask, test)
        _set_probe(sub, probe, train_mask | test)
    x = D.feature_matrix(sub, names)
    model = D.fit_heads(x[train_mask], y[train_mask], kinds[train_mask])
    return D.predict_model(model, x[test]), sub


def _result(rows, y, test, scores, names) -> dict:
    res = D.metrics(y[test], scores)
    x = D.feature_matrix([r for r, t in zip(rows, test) if t], names)
    res["single_signal_auroc"] = {n: D.auroc(y[test], np.where(np.isfinite(x[:, j]), x[:, j], np.nanmean(x[:, j])))
                                  for j, n in enumerate(names) if np.isfinite(x[:, j]).any()}
    return D._round(res)


def held_out_splits(rows: list[dict], y: np.ndarray, key: str, domain_folds: int = 4):
    """(name, train_mask, test_mask) for the generalisation checks; nothing held out is trained on.

    - key "generator": one generator's texts against the human texts they continue; a generator
      that continues no human text (chat-style generations) is tested against a hash-chosen fifth
      of the human groups instead, held out of training too.
    - key "domain": domains hashed into `domain_folds` folds; each fold's domains (human and
      synthetic alike) are left out together, so every test mixes unseen human and unseen
      synthetic domains, whether or not a single domain holds both labels.
    """
    groups = np.array([r["group"] for r in rows])
    if key == "generator":
        spare_humans = (D.group_folds(groups, 5, salt="cg-held-out-humans-v1") == 0) & (y == 0)
        for v in sorted({r.get("generator") for r in rows if r["y"] and r.get("generator")}):
            pos = np.array([r.get("generator") == v for r in rows]) & (y == 1)
            held = set(groups[pos])
            humans = np.array([g in held for g in groups]) & (y == 0)
            if not humans.any():
                humans = spare_humans
            test = pos | humans
            yield v, ~np.isin(groups, groups[test]), test  # whole groups out: no pair straddles
    else:
        domains = np.array([str(r.get("domain")) for r in rows])
        # domains in hash order, dealt round-robin: balanced folds, none empty
        order = sorted(set(domains), key=lambda d: hashlib.sha256(f"cg-domain-folds-v1\x00{d}".encode()).hexdigest())
        k_folds = min(domain_folds, len(order))
        fold_of = {d: i % k_folds for i, d in enumerate(order)}
        fold = np.array([fold_of[d] for d in domains])
        for k in range(k_folds):
            test = fold == k
            yield f"fold{k}: " + ",".join(sorted(set(domains[test]))), ~test & ~np.isin(groups, groups[test]), test


def _held_out(rows: list[dict], y: np.ndarray, key: str, names, view: str, kinds: np.ndarray,
              workers: int = 1, emb: Embeddings | None = None) -> dict:
    """Leave-one-generator-out / leave-domains-out, the classifier retrained without the held-out
    part. For domains, also the pooled out-of-domain scores of all folds (`pooled`)."""
    out: dict = {}
    pooled = np.full(len(rows), np.nan)
    for name, train_mask, test in held_out_splits(rows, y, key):
        if (y[train_mask] == 1).sum() == 0 or (y[test] == 0).sum() == 0 or (y[test] == 1).sum() == 0:
            continue
        s, sub = _fit_held_out(rows, y, train_mask, test, names, view, kinds, workers, emb)
        out[name] = _result(sub, y, test, s, names)  # single signals as this fit saw them
        pooled[test] = s
    if key == "domain" and np.isfinite(pooled).any():
        m = np.isfinite(pooled)
        out["pooled"] = breakdown([r for r, k in zip(rows, m) if k], y[m], pooled[m], None)
    return out


def calibrate(rows: list[dict], target_fpr: float, leave_one_out: bool = True,
              view: str = DEFAULT_VIEW, workers: int = 1) -> dict:
    """Fits the detector and measures it; `workers` processes train the fastText models (about
    70 with the held-out checks), with the same result for any number."""
    y = np.array([r["y"] for r in rows])
    kinds = synthetic_kinds(rows)
    folds = D.group_folds([r["group"] for r in rows], 5)
    oof_clf = _clf_oof(rows, folds, view, workers)
    for r, p in zip(rows, oof_clf):
        r[D.CLF_FEATURE] = float(p)
    emb = Embeddings(rows)
    if emb:
        _set_probe(rows, emb.oof(folds))
    has_lm = any(r.get("lm_mean_logprob") is not None for r in rows)
    full = D.FEATURES if emb else tuple(f for f in D.FEATURES if f != D.PROBE_FEATURE)
    models, cv = {}, {}
    for name, feats in (("full", full), ("no_lm", D.NO_LM_FEATURES)):
        if name == "full" and not has_lm:
            continue
        oof = D.cross_val_scores(rows, y, folds, feats, kinds=kinds)
        models[name] = D.fit_model(rows, y, feats, target_fpr, oof_scores=oof, kinds=kinds)
        cv[name] = breakdown(rows, y, oof, models[name]["threshold"])
    if "full" not in models:
        models["full"] = models["no_lm"]
    main = "full" if has_lm else "no_lm"
    out = {
        "calibration_version": D.CALIBRATION_VERSION,
        "target_fpr": target_fpr,
        "classifier_view": view,
        "threshold": models[main]["threshold"],
        "models": models,
        "probe": emb.fit(np.ones(len(rows), dtype=bool)) if emb else None,
        "training_set": {
            "documents": len(rows), "synthetic": int(y.sum()), "human": int((1 - y).sum()),
            "by_domain": _count(rows, "domain"), "by_generator": _count([r for r in rows if r["y"]], "generator"),
            "groups": len({r["group"] for r in rows}), "lm_scored": has_lm,
        },
        "cross_validation": {"folds": 5, "grouped_by": "pair group", **cv},
    }
    if leave_one_out:
        feats = models[main]["features"]
        out["leave_one_generator_out"] = _held_out(rows, y, "generator", feats, view, kinds, workers, emb)
        out["leave_domains_out"] = _held_out(rows, y, "domain", feats, view, kinds, workers, emb)
    return out


def _count(rows, key):
    c: dict[str, int] = {}
    for r in rows:
        k = str(r.get(key))
        c[k] = c.get(k, 0) + 1
    return dict(sorted(c.items()))


def breakdown(rows: list[dict], y: np.ndarray, scores: np.ndarray, threshold: float | None) -> dict:
    """Metrics overall, per domain, per generator and per generator family (its texts vs all
    human texts)."""
    res = D.metrics(y, scores, threshold)
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
    return res


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
    ap = argparse.ArgumentParser(prog=f"collapseguard {command}", allow_abbrev=False)
    ap.add_argument("--labeled", action="append", required=True, help="labeled JSONL (repeatable)")
    if command in ("train-classifier", "calibrate"):
        ap.add_argument("--view", default=DEFAULT_VIEW, type=check_view,
                        help="how the classifier reads text: 'words' or 'masked_top<K>' (models/classifier.py)")
    if command == "train-classifier":
        ap.add_argument("--output", required=True, help="folder for classifier.ftz")
        args = ap.parse_args(argv)
        from collapseguard.models.classifier import train

        rows = load_labeled(args.labeled)
        os.makedirs(args.output, exist_ok=True)
        summary = train(classifier_training_rows(rows), os.path.join(args.output, "classifier.ftz"),
                        view=args.view)
        summary["inputs"] = [os.path.basename(p) for p in args.labeled]
        with open(os.path.join(args.output, "classifier.json"), "w") as f:
            json.dump(summary, f, indent=2, sort_keys=True)
        print(json.dumps(summary, sort_keys=True))
        return 0
    ap.add_argument("--scoring-model", default="default")
    ap.add_argument("--lm-max-tokens", type=int, default=512)
    if command == "calibrate":
        ap.add_argument("--output", required=True, help="calibration.json to write")
        ap.add_argument("--target-fpr", type=float, default=0.01)
        ap.add_argument("--no-leave-one-out", action="store_true")
        ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                        help="processes training the fastText models (default: one per CPU; the result is "
                             "the same for any number)")
        ap.add_argument("--scores", help="JSONL cache of scored rows: reused where it holds a document with the "
                        "same text and scoring settings, written back with the rest (refit without rescoring)")
        args, beam_args = ap.parse_known_args(argv)
        if args.jobs < 1:  # before the slow scoring
            ap.error(f"--jobs must be >= 1, got {args.jobs}")
        rows = scored_rows(load_labeled(args.labeled), args.scoring_model, args.lm_max_tokens, beam_args, args.scores)
        cal = calibrate(rows, args.target_fpr, leave_one_out=not args.no_leave_one_out, view=args.view,
                        workers=args.jobs)
        cal["training_set"]["inputs"] = [os.path.basename(p) for p in args.labeled]
        cal["training_set"]["scoring_model"] = args.scoring_model
        with open(args.output, "w") as f:
            json.dump(cal, f, indent=2, sort_keys=True)
        print(json.dumps({k: cal[k] for k in ("threshold", "target_fpr")} | {"cv": {
            k: {m: v[m] for m in ("auroc", "tpr_at_1pct_fpr", "tpr_at_5pct_fpr")}
            for k, v in cal["cross_validation"].items() if isinstance(v, dict)}}, sort_keys=True))
        return 0
    if command == "evaluate":
        ap.add_argument("--calibration", help="calibration.json (default: the shipped one)")
        ap.add_argument("--classifier", help="classifier.ftz (default: the shipped one)")
        args, beam_args = ap.parse_known_args(argv)
        from collapseguard.models import shipped_path

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
