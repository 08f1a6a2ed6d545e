"""The training set's sources and generator families: one vocabulary for every held-out split.

A *source* is one way text was made: a human dataset x domain, or a generator family x the
dataset it wrote for. A *family* is who made a machine text (OpenAI, Anthropic, Google, the
GPT-2-era open models, SmolLM2). Model selection holds out whole sources and families, never
rows inside them (issue 13: folds cut inside a source overstate transfer by about 0.2 AUROC).
"""

from __future__ import annotations

import json
import os
from typing import Iterator

from collapseguard.models.families import family

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
# every file the detector trains on (LICENSES.md beside them says whose they are)
FILES = ("labeled-dev.jsonl", "labeled-modern.jsonl", "human-extra.jsonl", "human-more.jsonl",
         "synthetic-smollm2.jsonl", "synthetic-chat.jsonl")
def source_of(row: dict, file: str) -> str:
    """human:<file stem>/<dataset>/<domain>, or synthetic:<family>/<dataset or file stem>."""
    stem = file.split(".")[0]
    if row.get("label") == "human" or not row.get("generator"):
        return f"human:{stem}/" + "/".join(str(row[k]) for k in ("dataset", "domain") if row.get(k))
    return f"synthetic:{family(row['generator'])}/{row.get('dataset') or stem}"


def training_rows(folder: str = DATA) -> Iterator[dict]:
    """Every training row, in file order, with `file` and `source` added."""
    for file in FILES:
        with open(os.path.join(folder, file), encoding="utf-8") as f:
            for line in f:
                row = json.loads(line)
                yield dict(row, file=file, source=source_of(row, file))
