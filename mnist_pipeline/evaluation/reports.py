"""The reports of one scored set (the test set, the field set): its predictions table, per-digit
scores and sheet of misread digits, made and written together."""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from mnist_pipeline.evaluation.metrics import (
    confusion_matrix,
    most_confident_mistakes,
    per_class_metrics,
    predictions_table,
)
from mnist_pipeline.evaluation.sheets import draw_mistakes


@dataclass(frozen=True)
class Report:
    predictions: pd.DataFrame  # a row per digit read: actual, predicted
    per_class: pd.DataFrame  # a row per digit: precision, recall, F1, support
    misread: Image.Image  # the most confident mistakes, drawn

    def write(self, predictions_file: Path, per_class_file: Path, image_file: Path) -> None:
        self.predictions.to_csv(predictions_file, index=False)
        self.per_class.to_csv(per_class_file)
        self.misread.save(image_file, format="PNG")


def report(
    x: np.ndarray, actual: np.ndarray, probabilities: np.ndarray, misread_count: int, scored: str
) -> Report:
    """The reports of the set `scored` (named in warnings): pixels `x`, digits `actual`, and the
    model's `probabilities`; at most `misread_count` mistakes drawn."""
    predictions = predictions_table(actual, probabilities)
    per_class = per_class_metrics(confusion_matrix(actual, predictions["predicted"]), scored)
    mistakes = most_confident_mistakes(actual, probabilities, misread_count)
    return Report(predictions, per_class, draw_mistakes(x, actual, probabilities, mistakes))
