"""Generate chat-style synthetic training text with a small instruction-tuned model, offline.

    python models/training/generate_synthetic.py --out models/training/data/synthetic-smollm2.jsonl \
        --topics models/training/data/topics.jsonl [--model default] [--n 400] [--batch 32]

Prompts the model the way people use chat models (write an article / story / answer / essay /
review / README section on the topic of a human document) with varied decoding (temperature,
top-p, repetition penalty), so the detector learns what chat-model text looks like rather than
what GPT-2-era continuations look like. Resumable: rows already in --out are skipped.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import time

STYLES = {
    "news": "Write a news article (about {words} words) about: {topic}",
    "encyclopedia": "Write an encyclopedia-style explanation (about {words} words) of: {topic}",
    "story": "Write a short story (about {words} words) based on this prompt: {topic}",
    "essay": "Write a short essay (about {words} words) discussing: {topic}",
    "answer": "Answer this question in about {words} words: What should someone know about {topic}?",
    "blog": "Write a blog post (about {words} words) about {topic}.",
    "review": "Write a review (about {words} words) of something related to: {topic}",
    "docs": "Write a section of technical documentation (about {words} words) explaining {topic}.",
    "email": "Write an email (about {words} words) to a colleague about {topic}.",
}


def load_model(spec: str):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from collapseguard.models.causal_lm import resolve_model_source

    src = resolve_model_source(spec)
    tok = AutoTokenizer.from_pretrained(src, local_files_only=True)
    tok.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(src, dtype=torch.bfloat16, local_files_only=True)
    model.eval()
    return tok, model


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--topics", required=True, help="jsonl with {topic, domain, style?}")
    ap.add_argument("--out", required=True)
    ap.add_argument("--model", default="default")
    ap.add_argument("--generator-name", default="smollm2-135m-instruct")
    ap.add_argument("--n", type=int, default=400)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--max-new-tokens", type=int, default=320)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()

    import torch

    topics = [json.loads(x) for x in open(args.topics, encoding="utf-8")]
    rng = random.Random(args.seed)
    rng.shuffle(topics)
    done = set()
    if os.path.exists(args.out):
        done = {json.loads(x)["id"] for x in open(args.out, encoding="utf-8")}
    jobs = []
    for i, t in enumerate(topics[: args.n]):
        style = t.get("style") or rng.choice(sorted(STYLES))
        # a few decoding settings (each batched on its own): greedy-ish to adventurous
        params = {"temperature": rng.choice([0.7, 0.9, 1.0]), "top_p": 0.95,
                  "repetition_penalty": rng.choice([1.0, 1.15])}
        prompt = STYLES[style].format(topic=t["topic"], words=rng.choice([150, 200, 250, 300]))
        jid = f"{args.generator_name}-{hashlib.sha1(prompt.encode()).hexdigest()[:12]}"
        if jid not in done:
            jobs.append({"id": jid, "prompt": prompt, "style": style, "domain": t["domain"], "params": params})
    tok, model = load_model(args.model)
    # batch jobs with equal decoding params together
    by_params: dict[str, list] = {}
    for j in jobs:
        by_params.setdefault(json.dumps(j["params"], sort_keys=True), []).append(j)
    batches = [(k, js[i : i + args.batch]) for k, js in sorted(by_params.items())
               for i in range(0, len(js), args.batch)]
    with open(args.out, "a", encoding="utf-8") as out:
        for b, (key, group) in enumerate(batches):
            if True:
                params = json.loads(key)
                msgs = [tok.apply_chat_template([{"role": "user", "content": j["prompt"]}], tokenize=False,
                                                add_generation_prompt=True) for j in group]
                enc = tok(msgs, return_tensors="pt", padding=True)
                torch.manual_seed(args.seed + b)
                t0 = time.time()
                with torch.inference_mode():
                    gen = model.generate(**enc, max_new_tokens=args.max_new_tokens, do_sample=True,
                                         pad_token_id=tok.pad_token_id or tok.eos_token_id, **params)
                for j, row in zip(group, gen[:, enc["input_ids"].shape[1]:]):
                    text = " ".join(tok.decode(row, skip_special_tokens=True).split())
                    if len(text.split()) < 40:
                        continue
                    out.write(json.dumps({"id": j["id"], "text": text, "label": "synthetic",
                                          "generator": args.generator_name, "domain": j["domain"],
                                          "style": j["style"], "prompt": j["prompt"], "decoding": params}) + "\n")
                out.flush()
                print(f"batch {b + 1}/{len(batches)}: {len(group) * args.max_new_tokens / (time.time() - t0):.0f} tok/s",
                      flush=True)


if __name__ == "__main__":
    main()
