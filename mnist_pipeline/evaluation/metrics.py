"""Score predictions on the test set, and on the held-out drawings (the field set): accuracy,
loss, per-digit metrics, and the worst mistakes (drawn by sheets.py).

numpy and pandas: no TensorFlow; the stage runs the model and hands the probabilities over.
"""

import logging

import numpy as np
import pandas as pd

from mnist_pipeline.data.dataset import NUM_CLASSES

log = logging.getLogger(__name__)

# Keras clips probabilities the same way inside categorical_crossentropy.
EPSILON = 1e-7

DIGITS = pd.RangeIndex(NUM_CLASSES, name="digit")


def confusion_matrix(actual: np.ndarray, predicted: np.ndarray) -> pd.DataFrame:
    """(10, 10) counts: row = actual digit, column = predicted digit, every digit present."""
    digits = pd.CategoricalDtype(DIGITS)
    return pd.crosstab(
        pd.Series(actual, dtype=digits, name="actual"),
        pd.Series(predicted, dtype=digits, name="predicted"),
        dropna=False,
    )


def safe_ratio(numerator: pd.Series, denominator: pd.Series, name: str, why: str) -> pd.Series:
    """numerator / denominator per digit; 0.0 with a warning where the denominator is 0, not NaN."""
    for digit in denominator.index[denominator == 0]:
        log.warning("%s of digit %d is undefined (%s); reported as 0", name, digit, why)
    return (numerator / denominator.where(denominator != 0)).fillna(0.0)


def per_class_metrics(confusion: pd.DataFrame, scored: str = "the test set") -> pd.DataFrame:
    """Precision, recall, F1 and support of each digit, a row per digit, from a confusion matrix
    of `scored` (named in the warnings)."""
    hits = pd.Series(np.diag(confusion), index=DIGITS)
    predicted = pd.Series(confusion.sum(axis=0).to_numpy(), index=DIGITS)
    support = pd.Series(confusion.sum(axis=1).to_numpy(), index=DIGITS)
    if support.sum() == 0:  # one line rather than twenty warnings, one per digit and ratio
        log.info("%s is empty: every per-digit score is reported as 0", scored)
        zeros = pd.Series(0.0, index=DIGITS)
        return pd.DataFrame({"precision": zeros, "recall": zeros, "f1": zeros, "support": support})
    precision = safe_ratio(hits, predicted, "precision", f"never predicted on {scored}")
    recall = safe_ratio(hits, support, "recall", f"absent from {scored}")
    f1 = (2 * precision * recall / (precision + recall)).fillna(0.0)
    return pd.DataFrame({"precision": precision, "recall": recall, "f1": f1, "support": support})


def macro_average(per_class: pd.DataFrame) -> dict[str, float]:
    """Unweighted mean over the digits of precision, recall and F1."""
    return per_class[["precision", "recall", "f1"]].mean().to_dict()


def cross_entropy(actual: np.ndarray, probabilities: np.ndarray) -> float:
    """Mean categorical cross-entropy, as Keras computes it for a softmax output."""
    rows = np.arange(len(actual))
    return float(-np.mean(np.log(np.clip(probabilities[rows, actual], EPSILON, 1 - EPSILON))))


def score_test_set(
    actual: np.ndarray, probabilities: np.ndarray, per_class: pd.DataFrame
) -> dict[str, object]:
    """metrics.json's content: the headline scores of labels (N,), softmax outputs (N, 10) and
    their per-digit scores, summed up by their macro-averaged F1. The per-digit scores stay in
    per_class.csv and its plot: here each would be a column of `dvc exp show`, which should fit
    a terminal of 120 columns."""
    return {
        "test": {
            "accuracy": float(np.mean(probabilities.argmax(axis=1) == actual)),
            "loss": cross_entropy(actual, probabilities),
            "macro_f1": macro_average(per_class)["f1"],
        }
    }


def score_field_set(actual: np.ndarray, probabilities: np.ndarray) -> dict[str, float | int]:
    """metrics.json's `field` entry: the accuracy on the held-out drawings, and their count. An
    empty field set has its count, 0, alone: there is no accuracy of nothing, and a made-up one
    would read as a score (`dvc metrics show` prints `-` for the missing accuracy)."""
    if len(actual) == 0:
        return {"count": 0}
    return {
        "accuracy": float(np.mean(probabilities.argmax(axis=1) == actual)),
        "count": len(actual),
    }


# The columns of reports/evaluate/predictions.csv, as mnist-compare reads them too.
PREDICTIONS_COLUMNS = ("actual", "predicted")


def predictions_table(actual: np.ndarray, probabilities: np.ndarray) -> pd.DataFrame:
    """A row per test image, its `actual` and `predicted` digit: DVC's confusion-matrix input."""
    actual_column, predicted_column = PREDICTIONS_COLUMNS
    return pd.DataFrame({actual_column: actual, predicted_column: probabilities.argmax(axis=1)})


def most_confident_mistakes(
    actual: np.ndarray, probabilities: np.ndarray, count: int
) -> np.ndarray:
    """Indices of up to `count` misread images, the most confident mistake first."""
    predicted = probabilities.argmax(axis=1)
    wrong = np.flatnonzero(predicted != actual)
    confidence = probabilities[wrong, predicted[wrong]]
    return wrong[np.argsort(-confidence, kind="stable")[:count]]
