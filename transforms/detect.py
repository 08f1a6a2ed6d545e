"""Detector step: the classifier probability and the calibrated p_synthetic, per record.

Thin DoFn over models.classifier and models.detector; loaded in setup (never at graph build).
Provenance then turns p_synthetic >= threshold into `suspected_synthetic` for unattested text.
"""

from __future__ import annotations

import apache_beam as beam
from apache_beam.transforms.window import GlobalWindows

DETECTOR_COLUMNS = ("clf_p_synthetic", "p_synthetic")


class DetectFn(beam.DoFn):
    def __init__(self, classifier_path: str, calibration_path: str, batch_size: int = 256):
        self._classifier_path = classifier_path
        self._calibration_path = calibration_path
        self._batch_size = batch_size
        self._buffer: list[dict] = []

    def setup(self):
        from collapseguard.models.classifier import Classifier
        from collapseguard.models.detector import Detector

        self._clf = Classifier(self._classifier_path)
        self._det = Detector.load(self._calibration_path)

    def start_bundle(self):
        self._buffer = []

    def process(self, record: dict):
        self._buffer.append(record)
        if len(self._buffer) >= self._batch_size:
            yield from self._flush()

    def finish_bundle(self):
        for r in self._flush():
            yield GlobalWindows.windowed_value(r)

    def _flush(self):
        batch, self._buffer = self._buffer, []
        if not batch:
            return []
        return score_batch(batch, self._clf, self._det)


def score_batch(records: list[dict], clf, det) -> list[dict]:
    for r, p in zip(records, clf.predict([r["text"] for r in records])):
        r["clf_p_synthetic"] = p
    for r, p in zip(records, det.predict(records)):
        r["p_synthetic"] = p
        r["detector_threshold"] = det.threshold_for(r.get("lm_mean_logprob") is not None)
    return records
