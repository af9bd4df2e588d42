"""Stage evaluate: score the served model (the LiteRT export) on the test set and on the held-out
drawings of the collection (the field set); write metrics, tables and misread digits."""

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from mnist_pipeline.data.dataset import NUM_CLASSES
from mnist_pipeline.data.preprocessing import COLLECTED_NAMES, check_prepared
from mnist_pipeline.evaluation.metrics import (
    confusion_matrix,
    most_confident_mistakes,
    per_class_metrics,
    predictions_table,
    score_field_set,
    score_test_set,
)
from mnist_pipeline.evaluation.sheets import draw_mistakes
from mnist_pipeline.params import EvaluateParams, load_section
from mnist_pipeline.plumbing import cli, paths
from mnist_pipeline.plumbing.arrays import load_arrays
from mnist_pipeline.plumbing.files import atomic_files, check_model_file
from mnist_pipeline.reading.classifiers import Classifier, load_classifier


def report(
    x: np.ndarray, actual: np.ndarray, probabilities: np.ndarray, misread_count: int, scored: str
) -> tuple[pd.DataFrame, pd.DataFrame, Image.Image]:
    """The predictions table, per-digit scores and sheet of misread digits of one scored set."""
    predictions = predictions_table(actual, probabilities)
    per_class = per_class_metrics(confusion_matrix(actual, predictions["predicted"]), scored)
    mistakes = most_confident_mistakes(actual, probabilities, misread_count)
    return predictions, per_class, draw_mistakes(x, actual, probabilities, mistakes)


def write_report(
    tables: tuple[pd.DataFrame, pd.DataFrame, Image.Image],
    predictions_file: Path,
    per_class_file: Path,
    image_file: Path,
) -> None:
    predictions, per_class, sheet = tables
    predictions.to_csv(predictions_file, index=False)
    per_class.to_csv(per_class_file)
    sheet.save(image_file, format="PNG")


def read_field(classifier: Classifier) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The field set's pixels, digits and the model's probabilities; it may have no rows."""
    field = load_arrays(paths.FIELD_DIR, COLLECTED_NAMES)
    if len(field["x"]) == 0:  # nothing to run the model on
        return field["x"], field["y"].argmax(axis=1), np.zeros((0, NUM_CLASSES), np.float32)
    check_prepared(field["x"], field["y"], origin=str(paths.FIELD_DIR))
    return field["x"], field["y"].argmax(axis=1), classifier(field["x"])


def main(args: argparse.Namespace) -> None:
    params = load_section(EvaluateParams)
    test = load_arrays(paths.PREPARED_DIR, ("x_test", "y_test"), mmap=True)
    check_prepared(test["x_test"], test["y_test"], origin=str(paths.PREPARED_DIR))
    check_model_file(paths.SERVING_MODEL_FILE)  # the one check of the model load
    classifier = load_classifier(paths.SERVING_MODEL_FILE)
    probabilities = classifier(test["x_test"])
    actual = test["y_test"].argmax(axis=1)
    tables = report(test["x_test"], actual, probabilities, params.misread_count, "the test set")
    field_x, field_actual, field_probabilities = read_field(classifier)
    field_tables = report(
        field_x, field_actual, field_probabilities, params.misread_count, "the field set"
    )
    metrics = {
        **score_test_set(actual, probabilities, tables[1]),
        "field": score_field_set(field_actual, field_probabilities),
    }

    # All or none: a failure midway must not leave reports of two different models.
    with atomic_files(
        paths.METRICS_FILE,
        paths.PREDICTIONS_FILE,
        paths.PER_CLASS_FILE,
        paths.MISREAD_IMAGE,
        paths.FIELD_PREDICTIONS_FILE,
        paths.FIELD_PER_CLASS_FILE,
        paths.FIELD_MISREAD_IMAGE,
    ) as (metrics_file, *files):
        metrics_file.write_text(json.dumps(metrics, indent=2) + "\n")
        write_report(tables, *files[:3])
        write_report(field_tables, *files[3:])


if __name__ == "__main__":
    cli.run(main, argparse.ArgumentParser(prog="evaluate", description=__doc__))
