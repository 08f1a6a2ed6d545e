"""Models: language id, causal-LM scoring, the human/synthetic classifier and calibration."""

import os


def shipped_path() -> str:
    """Folder of the shipped detector (classifier.ftz, calibration.json)."""
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "shipped")
