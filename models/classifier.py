"""fastText human/synthetic classifier (fasttext-numpy2): small, quantized, shippable.

Input text is lower-cased and split into words and single punctuation marks, so the model sees
style (":" before lists, em dashes, "!" runs) as well as vocabulary; word bigrams on.
Training is single-threaded with a fixed seed, so the same data gives the same model.
"""

from __future__ import annotations

import os
import re
import tempfile
from typing import Iterable, Sequence

LABELS = ("__label__human", "__label__synthetic")
_TOKEN = re.compile(r"\w+|[^\w\s]")
MAX_CHARS = 4000


def prepare(text: str) -> str:
    return " ".join(_TOKEN.findall(text[:MAX_CHARS].lower()))


def train(rows: Iterable[tuple[str, int]], out_path: str, *, epoch: int = 20, dim: int = 32,
          word_ngrams: int = 2, lr: float = 0.3, min_count: int = 2, seed: int = 13,
          quantize: bool = True) -> dict:
    """Trains on (text, label 0/1) rows and saves a .ftz (quantized) or .bin model."""
    import fasttext

    fasttext.FastText.eprint = lambda *a, **k: None
    rows = list(rows)
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False, encoding="utf-8") as f:
        for text, label in rows:
            f.write(f"{LABELS[label]} {prepare(text)}\n")
        train_file = f.name
    try:
        model = fasttext.train_supervised(input=train_file, epoch=epoch, dim=dim, wordNgrams=word_ngrams, lr=lr,
                                          minCount=min_count, loss="softmax", thread=1, seed=seed, verbose=0)
        if quantize:
            model.quantize(input=train_file, qnorm=True, retrain=True, cutoff=30_000)
        os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
        model.save_model(out_path)
    finally:
        os.unlink(train_file)
    return {"documents": len(rows), "synthetic": sum(1 for _, y in rows if y), "epoch": epoch, "dim": dim,
            "word_ngrams": word_ngrams, "quantized": quantize, "bytes": os.path.getsize(out_path)}


class Classifier:
    def __init__(self, path: str):
        import fasttext

        fasttext.FastText.eprint = lambda *a, **k: None
        self._model = fasttext.load_model(path)

    def predict(self, texts: Sequence[str]) -> list[float]:
        """P(synthetic) per text."""
        labels, probs = self._model.predict([prepare(t) for t in texts], k=2)
        out = []
        for labs, ps in zip(labels, probs):
            d = dict(zip(labs, (float(p) for p in ps)))
            out.append(round(min(1.0, d.get(LABELS[1], 1.0 - d.get(LABELS[0], 0.5))), 6))
        return out
