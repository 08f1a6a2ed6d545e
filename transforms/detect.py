"""Detector step: the classifier probability, the hidden-state probe and the calibrated
p_synthetic, per record.

Thin DoFn over models.classifier and models.detector; loaded in setup (never at graph build).
Provenance then turns p_synthetic >= threshold into `suspected_synthetic` for unattested text.
"""

from __future__ import annotations

from collapseguard.models.classifier import Classifier
from collapseguard.models.detector import Detector
from collapseguard.transforms.base import BatchedDoFn

DETECTOR_COLUMNS = ("clf_p_synthetic", "lm_probe_logit", "p_synthetic")


class DetectFn(BatchedDoFn):
    """`keep_embedding`: leave `lm_embedding` on the records (written to Parquet); by default
    it is dropped here, once the probe has read it."""

    def __init__(self, classifier_path: str, calibration_path: str, batch_size: int = 256,
                 keep_embedding: bool = False):
        super().__init__(batch_size)
        self._classifier_path = classifier_path
        self._calibration_path = calibration_path
        self._keep_embedding = keep_embedding

    def setup(self):

        self._det = Detector.load(self._calibration_path)
        self._clf = Classifier(self._classifier_path, view=self._det.classifier_view)

    def score_batch(self, records: list[dict]) -> list[dict]:
        return score_batch(records, self._clf, self._det, self._keep_embedding)


def score_batch(records: list[dict], clf, det, keep_embedding: bool = False) -> list[dict]:
    for r, p in zip(records, clf.predict([r["text"] for r in records])):
        r["clf_p_synthetic"] = p
    for r, s in zip(records, det.probe_logits(records)):
        r["lm_probe_logit"] = s
        if not keep_embedding:
            r.pop("lm_embedding", None)
    for r, p in zip(records, det.predict(records)):
        r["p_synthetic"] = p
        r["detector_threshold"] = det.threshold_for(r.get("lm_mean_logprob") is not None)
    return records
