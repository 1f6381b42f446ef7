"""Models saved by earlier autocode releases load and give the same scores."""

import json
from pathlib import Path

import numpy as np

import autocode as ac

DATA = Path(__file__).parent / "data"
ROOT = Path(__file__).parent.parent


def test_model_saved_by_0_1_loads_with_the_same_scores():
    expected = json.loads((DATA / "model-0.1.0.expected.json").read_text(encoding="utf-8"))
    assert expected["autocode_version"].startswith("0.1.")
    model = ac.CodingModel.load(DATA / "model-0.1.0")
    assert model.codes_ == expected["codes"]
    np.testing.assert_allclose(model.thresholds_, expected["thresholds"], rtol=0, atol=1e-12)
    segments = ac.read_transcripts([ROOT / expected["input"]])
    np.testing.assert_allclose(model.predict_proba(segments), np.array(expected["scores"]), rtol=0, atol=1e-9)
