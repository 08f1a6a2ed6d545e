"""Detector step: the classifier probability and the calibrated p_synthetic, per record.

Thin DoFn over models.classifier and models.detector; loaded in setup (never at graph build).
Provenance then turns p_synthetic >= threshold into `suspected_synthetic` for unattested text.
"""

from __future__ import annotations

from collapseguard.transforms.base import BatchedDoFn

DETECTOR_COLUMNS = ("clf_p_synthetic", "p_synthetic")


class DetectFn(BatchedDoFn):
    def __init__(self, classifier_path: str, calibration_path: str, batch_size: int = 256):
        super().__init__(batch_size)
        self._classifier_path = classifier_path
        self._calibration_path = calibration_path

    def setup(self):
        from collapseguard.models.classifier import Classifier
        from collapseguard.models.detector import Detector

        self._det = Detector.load(self._calibration_path)
        self._clf = Classifier(self._classifier_path, view=self._det.classifier_view)

    def score_batch(self, records: list[dict]) -> list[dict]:
        return score_batch(records, self._clf, self._det)


def score_batch(records: list[dict], clf, det) -> list[dict]:
    for r, p in zip(records, clf.predict([r["text"] for r in records])):
        r["clf_p_synthetic"] = p
    for r, p in zip(records, det.predict(records)):
        r["p_synthetic"] = p
        r["detector_threshold"] = det.threshold_for(r.get("lm_mean_logprob") is not None)
    return records
