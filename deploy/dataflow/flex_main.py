"""Dataflow Flex Template entry point ($FLEX_TEMPLATE_PYTHON_PY_FILE). Glue only.

The template launcher runs `python flex_main.py --input=... --scoring_model=... --runner=...
--project=... ...`. Template parameter names are spelled with '_' (metadata.json); the CLI's own
flags use '-'. This maps ours back and calls `collapseguard run`; Beam's flags pass untouched.
"""

import sys

from collapseguard.pipeline.cli import main

# Template parameter -> collapseguard flag, for the flags that have a '-' in their name.
RENAMED = {"--scoring_model": "--scoring-model", "--lm_sample_rate": "--lm-sample-rate",
           "--lm_max_tokens": "--lm-max-tokens", "--lm_cache_dir": "--lm-cache-dir"}


def cli_args(argv: list[str]) -> list[str]:
    out = []
    for arg in argv:
        name, sep, value = arg.partition("=")
        out.append(RENAMED.get(name, name) + sep + value)
    return ["run", *out]


if __name__ == "__main__":
    sys.exit(main(cli_args(sys.argv[1:])))
