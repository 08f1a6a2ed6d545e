"""Generator families: who made a machine text, the unit held out when measuring transfer.

A detector is judged on families it never trained on (issue 13): OpenAI, Anthropic, Google, the
GPT-2-era open models (GPT-2, OPT, GPT-Neo/J/NeoX), SmolLM2. An unknown generator is its own
family, named by itself.
"""

from __future__ import annotations

# generator-name fragment -> family, first match wins (GPT-2-era open models before "gpt")
FAMILIES = (("gpt2", "gpt2-era"), ("opt-", "gpt2-era"), ("gpt-neo", "gpt2-era"), ("gpt-j", "gpt2-era"),
            ("gpt", "openai"), ("claude", "anthropic"), ("gemini", "google"), ("smollm2", "smollm2"))


def family(generator: str) -> str:
    g = generator.strip().lower()
    return next((fam for key, fam in FAMILIES if key in g), g)
