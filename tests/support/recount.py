"""Every figure of the evaluate stage's reports, recounted with pandas from the predictions tables
they summarise (reports/evaluate/predictions.csv and, for the held-out drawings,
field_predictions.csv): nothing taken from the code that wrote them."""

import json
from pathlib import Path

import pandas as pd
import pytest


def recount(predictions: pd.DataFrame) -> pd.DataFrame:
    """Precision, recall, F1 and support of each digit 0-9; a ratio with nothing to divide by is
    0, as the reports say."""
    rows = {}
    for digit in range(10):
        actual, predicted = predictions["actual"] == digit, predictions["predicted"] == digit
        hits = int((actual & predicted).sum())
        precision = hits / predicted.sum() if predicted.any() else 0.0
        recall = hits / actual.sum() if actual.any() else 0.0
        f1 = 2 * precision * recall / (precision + recall) if hits else 0.0
        rows[digit] = {"precision": precision, "recall": recall, "f1": f1, "support": actual.sum()}
    return pd.DataFrame.from_dict(rows, orient="index")


def check_reports(root: Path) -> pd.DataFrame:
    """Assert that metrics.json and per_class.csv under `root` say what predictions.csv does;
    return the recount."""
    predictions = pd.read_csv(root / "reports/evaluate/predictions.csv")
    expected = recount(predictions)
    per_class = pd.read_csv(root / "reports/evaluate/per_class.csv", index_col="digit")
    pd.testing.assert_frame_equal(per_class, expected, check_dtype=False, check_names=False)
    metrics = json.loads((root / "reports/metrics.json").read_text())["test"]
    right = predictions["actual"] == predictions["predicted"]
    assert metrics["accuracy"] == pytest.approx(right.mean())
    macro = expected[["precision", "recall", "f1"]].mean().to_dict()
    assert metrics["macro_f1"] == pytest.approx(macro["f1"])
    return expected


def check_field_reports(root: Path) -> dict:
    """Assert that metrics.json's `field` entry and field_per_class.csv under `root` say what
    field_predictions.csv does (no accuracy when it has no rows); return that entry."""
    predictions = pd.read_csv(root / "reports/evaluate/field_predictions.csv")
    per_class = pd.read_csv(root / "reports/evaluate/field_per_class.csv", index_col="digit")
    expected = recount(predictions)
    pd.testing.assert_frame_equal(per_class, expected, check_dtype=False, check_names=False)
    field = json.loads((root / "reports/metrics.json").read_text())["field"]
    assert field["count"] == len(predictions)
    if len(predictions):
        right = predictions["actual"] == predictions["predicted"]
        assert field == {"accuracy": pytest.approx(right.mean()), "count": len(predictions)}
    else:
        assert field == {"count": 0}
    return field
