"""Scores every training document with the scoring LM, at every token budget, once.

The detector is fitted from LM features (mean log-prob, Fast-DetectGPT curvature, predictive
entropy, and the mean-pooled hidden state the probe reads). Scoring the ~14,600 training
documents takes hours on a 2-core CPU and about a minute on a GPU, so the result is a cache in
the repo (`models/training/scores/`) that `calibrate` and the held-out-source checks read, and
this script is how that cache is made again:

    python models/training/score_lm.py --out models/training/scores [--model default|PATH.gguf]

It scores exactly as the stage does (`CausalLMScorer.score_texts`, the same truncation and
statistics), once per budget in `--budgets` (128, 256, 512: the cost curve of issue 13).
Outputs, rows in `sources.training_rows()` order:
- `lm-signals.jsonl.gz`: per document `id`, `source`, and per budget the lm_* signals;
- `embedding-<budget>.<k>.npy`: the probe's pooled hidden state, float16, split in `--parts`
  row blocks (NaN rows where a document had under 2 tokens);
- `scored.json`: device, dtype, library versions, model file, counts, seconds.
Values depend on the device's kernels (bf16 on a GPU, float32 or bf16 on a CPU) at the 1e-2
level: `scored.json` records which made the cache.
"""

from __future__ import annotations

import argparse
import gzip
import importlib.util
import json
import os
import sys
import time
import types

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
SIGNALS = ("lm_mean_logprob", "lm_fdg_curvature", "lm_mean_entropy", "lm_tokens", "lm_error")


def _importable_without_install() -> None:
    """Lets this script run from a bare checkout on a machine that has torch and transformers but
    neither this package installed nor Beam (a lent GPU machine): `collapseguard.models` is found
    in the repo's models/ folder, and the two Beam names causal_lm.py imports at module level
    (used only by its Beam ModelHandler, never while scoring) are stand-ins."""
    if importlib.util.find_spec("collapseguard") is None:
        sys.path.insert(0, REPO)
        import collapseguard

        collapseguard.__path__.append(REPO)  # collapseguard.models -> REPO/models
    if importlib.util.find_spec("apache_beam") is None:
        beam = types.ModuleType("apache_beam")
        metrics = types.ModuleType("apache_beam.metrics")
        metrics.Metrics = None
        base = types.ModuleType("apache_beam.ml.inference.base")

        class ModelHandler:
            def __class_getitem__(cls, _):
                return cls

        base.ModelHandler = ModelHandler
        for name, mod in (("apache_beam", beam), ("apache_beam.metrics", metrics),
                          ("apache_beam.ml", types.ModuleType("apache_beam.ml")),
                          ("apache_beam.ml.inference", types.ModuleType("apache_beam.ml.inference")),
                          ("apache_beam.ml.inference.base", base)):
            sys.modules[name] = mod


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--model", default="default")
    ap.add_argument("--budgets", default="128,256,512")
    ap.add_argument("--parts", type=int, default=2, help="row blocks per embedding file")
    ap.add_argument("--limit", type=int, default=0, help="score only the first N documents (a smoke test)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--layers", default="",
                    help="hidden-state indices to pool instead of the scorer's own (probe depth), "
                    "written as embedding-<budget>-L<layer>.<k>.npy")
    args = ap.parse_args(argv)
    _importable_without_install()
    import numpy as np
    import torch
    import transformers

    from collapseguard.models.causal_lm import CausalLMScorer, LMConfig, model_version
    from sources import training_rows

    rows = list(training_rows())
    if args.limit:
        rows = rows[: args.limit]
    texts = [r["text"] for r in rows]
    budgets = [int(b) for b in args.budgets.split(",")]
    os.makedirs(args.out, exist_ok=True)
    start = time.time()
    scorer = CausalLMScorer.load(LMConfig(model=args.model, max_tokens=max(budgets), device=args.device,
                                          embedding=True))
    load_s = time.time() - start
    signals: list[dict] = [{"id": r["id"], "source": r["source"]} for r in rows]
    timings = {}
    layers = [int(x) for x in args.layers.split(",") if x] or [None]
    for b, layer in [(b, layer) for b in budgets for layer in layers]:
        t0 = time.time()
        scorer.max_tokens = b
        if layer is not None:
            scorer.embedding_layer = layer
        out = scorer.score_texts(texts)
        name = f"embedding-{b}" if layer is None else f"embedding-{b}-L{layer}"
        timings[name] = {"seconds": round(time.time() - t0, 1), "real_tokens": out["real_tokens"],
                      "padded_tokens": out["padded_tokens"]}
        vectors = [s.get("lm_embedding") for s in out["scores"]]
        dim = next((len(v) for v in vectors if v), 0)
        emb = np.full((len(rows), dim), np.nan, dtype=np.float16)
        for i, (s, v) in enumerate(zip(out["scores"], vectors)):
            signals[i][str(b)] = {k: s.get(k) for k in SIGNALS}
            if v:
                emb[i] = np.asarray(v, dtype=np.float32)
        for k, block in enumerate(np.array_split(emb, args.parts)):
            np.save(os.path.join(args.out, f"{name}.{k}.npy"), block)
        print(f"{name}: {timings[name]}", flush=True)
    with gzip.GzipFile(os.path.join(args.out, "lm-signals.jsonl.gz"), "wb", mtime=0) as f:
        for s in signals:
            f.write((json.dumps(s, sort_keys=True) + "\n").encode("utf-8"))
    meta = {"documents": len(rows), "budgets": budgets, "parts": args.parts, "scorer": scorer.describe(),
            "model": args.model, "model_version": model_version(args.model), "torch": torch.__version__,
            "transformers": transformers.__version__,
            "device_name": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
            "load_seconds": round(load_s, 1), "timings": timings}
    with open(os.path.join(args.out, "scored.json"), "w") as f:
        json.dump(meta, f, indent=2, sort_keys=True)
    print(json.dumps(meta, sort_keys=True))


if __name__ == "__main__":
    main()
