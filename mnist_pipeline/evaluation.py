"""Score predictions on the test set: accuracy, loss, per-digit metrics, and the worst mistakes.

Numpy and Pillow only; the stage runs the model and hands the probabilities over.
"""

import logging
import math

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from mnist_pipeline.dataset import NUM_CLASSES

log = logging.getLogger(__name__)

# Keras clips probabilities the same way inside categorical_crossentropy.
EPSILON = 1e-7


def confusion_matrix(actual: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """(10, 10) counts: row = actual digit, column = predicted digit."""
    pairs = actual.astype(np.int64) * NUM_CLASSES + predicted
    return np.bincount(pairs, minlength=NUM_CLASSES**2).reshape(NUM_CLASSES, NUM_CLASSES)


def safe_ratio(numerator: float, denominator: float, what: str) -> float:
    """numerator / denominator, or 0.0 (with a warning) when nothing was counted, never NaN."""
    if denominator == 0:
        log.warning("%s is undefined (nothing to divide by); reported as 0", what)
        return 0.0
    return float(numerator / denominator)


def per_class_metrics(confusion: np.ndarray) -> dict[str, dict[str, float | int]]:
    """Precision, recall, F1 and support of each digit, from a confusion matrix."""
    metrics = {}
    for digit in range(len(confusion)):
        hits = confusion[digit, digit]
        predicted, support = confusion[:, digit].sum(), confusion[digit, :].sum()
        precision = safe_ratio(hits, predicted, f"precision of digit {digit} (never predicted)")
        recall = safe_ratio(hits, support, f"recall of digit {digit} (absent from the test set)")
        f1 = 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)
        metrics[str(digit)] = {
            "precision": precision,
            "recall": recall,
            "f1": f1,
            "support": int(support),
        }
    return metrics


def macro_average(per_class: dict[str, dict[str, float | int]]) -> dict[str, float]:
    """Unweighted mean over the digits of precision, recall and F1."""
    return {
        name: float(np.mean([scores[name] for scores in per_class.values()]))
        for name in ("precision", "recall", "f1")
    }


def cross_entropy(actual: np.ndarray, probabilities: np.ndarray) -> float:
    """Mean categorical cross-entropy, as Keras computes it for a softmax output."""
    rows = np.arange(len(actual))
    return float(-np.mean(np.log(np.clip(probabilities[rows, actual], EPSILON, 1 - EPSILON))))


def score_test_set(actual: np.ndarray, probabilities: np.ndarray) -> dict[str, object]:
    """The evaluate stage's metrics.json content for labels (N,) and softmax outputs (N, 10)."""
    predicted = probabilities.argmax(axis=1)
    per_class = per_class_metrics(confusion_matrix(actual, predicted))
    return {
        "test": {
            "accuracy": float(np.mean(predicted == actual)),
            "loss": cross_entropy(actual, probabilities),
            "macro_avg": macro_average(per_class),
            "per_class": per_class,
        }
    }


def most_confident_mistakes(
    actual: np.ndarray, probabilities: np.ndarray, count: int
) -> np.ndarray:
    """Indices of up to `count` misread images, the most confident mistake first."""
    predicted = probabilities.argmax(axis=1)
    wrong = np.flatnonzero(predicted != actual)
    confidence = probabilities[wrong, predicted[wrong]]
    return wrong[np.argsort(-confidence, kind="stable")[:count]]


def draw_mistakes(
    images: np.ndarray,
    actual: np.ndarray,
    probabilities: np.ndarray,
    indices: np.ndarray,
    zoom: int = 4,
) -> Image.Image:
    """A grid of the given images, each captioned `true -> predicted (probability)`."""
    font = ImageFont.load_default(size=14)
    side, caption, gap = images.shape[1] * zoom, 20, 4
    columns = max(1, math.ceil(math.sqrt(len(indices))))
    rows = max(1, math.ceil(len(indices) / columns))
    sheet = Image.new("L", (columns * (side + gap), rows * (side + caption + gap)), color=64)
    draw = ImageDraw.Draw(sheet)
    if len(indices) == 0:
        draw.text((4, 4), "no mistakes", fill=255, font=font)
    for position, index in enumerate(indices):
        left = (position % columns) * (side + gap)
        top = (position // columns) * (side + caption + gap)
        digit = Image.fromarray(images[index]).resize((side, side), Image.Resampling.NEAREST)
        sheet.paste(digit, (left, top))
        guess = int(probabilities[index].argmax())
        label = f"{actual[index]} -> {guess} ({probabilities[index, guess]:.2f})"
        draw.text((left + 2, top + side + 2), label, fill=255, font=font)
    return sheet
