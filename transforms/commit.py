"""Per-chunk commit markers: what makes a killed run resumable without loss or duplicates.

A chunk's outputs (strata Parquet, rejected JSONL) are each written atomically (temp name +
rename); after the last of them, `DIR/_commits/<chunk_key>.json` is written, again atomically.
A chunk is committed exactly when its marker exists; what --resume does with committed chunks
is transforms/resume.py.
Markers carry a fingerprint of everything that changes an output (`fingerprint_parts`: options,
config, code and model versions, each input shard's size and modification time or generation):
resuming with any of them changed is refused, naming what changed.
"""

from __future__ import annotations

import hashlib
import json

from fsspec.core import url_to_fs

from collapseguard.transforms.write import join, write_json

COMMITS = "_commits"


# What a run's outputs depend on: a resume must match all of it (fingerprint_parts).
FINGERPRINT_KEYS = ("inputs", "config", "scoring_model", "scoring_model_version", "lm_max_tokens",
                    "lm_sample_rate", "write_lm_embedding", "detector", "versions", "shards")


def fingerprint_parts(run_info: dict, versions: dict | None = None, model_version: str | None = None,
                      shards: dict | None = None) -> dict:
    """Everything that changes an output: the run's options and config (`run_info`, as the manifest
    records them), the code's and the scoring model's versions, and each input shard's identity
    (name -> [size, modification time or the store's generation/etag])."""
    parts = {k: run_info.get(k) for k in FINGERPRINT_KEYS}
    parts.update(versions=versions, scoring_model_version=model_version, shards=shards)
    return parts


def fingerprint(parts: dict) -> str:
    blob = json.dumps({k: parts.get(k) for k in FINGERPRINT_KEYS}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


def differences(old: dict, new: dict) -> list[str]:
    """What differs between two runs' fingerprint parts, in words (first changed shards named)."""
    out = []
    for k in FINGERPRINT_KEYS:
        a, b = old.get(k), new.get(k)
        if json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str):
            continue
        if k == "shards" and isinstance(a, dict) and isinstance(b, dict):
            changed = sorted(n for n in set(a) | set(b) if a.get(n) != b.get(n))
            out.append(f"input shards ({len(changed)} added, removed or changed since, e.g. {changed[0]})")
        else:
            out.append(k.replace("_", "-") if k in ("scoring_model", "lm_max_tokens", "lm_sample_rate",
                                                       "write_lm_embedding", "detector") else k)
    return out


def marker(stats: dict, floor_info: dict, run_fingerprint: str, ramp: dict | None = None) -> dict:
    return {"chunk_key": stats["chunk_key"], "shard_key": stats["shard_key"], "stats": stats,
            "floor_info": floor_info, "rarity_ramp": ramp, "fingerprint": run_fingerprint}


def write_commit(output: str, chunk_key: str, content: dict) -> None:
    write_json(join(output, COMMITS, f"{chunk_key}.json"), content)


def read_commits(output: str) -> dict[str, dict]:
    """All commit markers under `output`, by chunk key (empty if none)."""
    fs, path = url_to_fs(output)
    folder = f"{path.rstrip('/')}/{COMMITS}"
    if not fs.exists(folder):
        return {}
    out = {}
    for p in sorted(fs.ls(folder, detail=False)):
        name = p.rsplit("/", 1)[-1]
        if name.endswith(".json") and not name.startswith(".tmp-"):
            with fs.open(p, "rt", encoding="utf-8") as f:
                m = json.load(f)
            out[m.get("chunk_key") or m["shard_key"]] = m
    return out
