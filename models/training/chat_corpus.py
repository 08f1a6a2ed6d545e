"""Merge the hand-prompted chat-assistant texts into one training file, whitespace-normalised.

    python models/training/chat_corpus.py      # chat/*.jsonl -> data/synthetic-chat.jsonl

`data/chat/{a..y,za..zf}.jsonl` hold 1,690 texts written by a modern chat assistant (Claude, run as
development agents on 2026-11-22; `generator: claude-agent`), each answering a realistic user
request (`prompt`) in one of 124 domains (`domain`: fiction, reviews, health_medicine,
seo_web_content, rewrite_summarise, ...), in plain prose or with the markdown the assistant
chose, 50-450 words. They are kept as written. The training file normalises whitespace to
single spaces, as labeled-dev and every human source here are: otherwise the layout itself
(paragraph breaks, which the human sources lost) would be the easiest thing to learn.
Each text is its own group (no human pair continues it).
"""

from __future__ import annotations

import glob
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))


def main() -> None:
    rows = []
    for path in sorted(glob.glob(os.path.join(HERE, "data", "chat", "*.jsonl"))):
        with open(path, encoding="utf-8") as f:
            for line in f:
                r = json.loads(line)
                rows.append({"id": r["id"], "text": " ".join(r["text"].split()), "label": "synthetic",
                             "generator": r["generator"], "domain": r["domain"], "style": r.get("style"),
                             "group": r["id"]})
    out = os.path.join(HERE, "data", "synthetic-chat.jsonl")
    with open(out, "w", encoding="utf-8") as f:
        for r in sorted(rows, key=lambda r: r["id"]):
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    print(f"wrote {len(rows)} rows to {out}")


if __name__ == "__main__":
    main()
