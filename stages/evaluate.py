"""Stage evaluate: score the served model (the LiteRT export) on the test set and on the held-out
drawings of the collection (the field set); write metrics, tables and misread digits."""

import argparse
import json

import numpy as np

from mnist_pipeline.data.dataset import NUM_CLASSES
from mnist_pipeline.data.preprocessing import COLLECTED_NAMES, check_prepared
from mnist_pipeline.evaluation.metrics import score_field_set, score_test_set
from mnist_pipeline.evaluation.reports import report
from mnist_pipeline.params import EvaluateParams, load_section
from mnist_pipeline.plumbing import cli, paths
from mnist_pipeline.plumbing.arrays import load_arrays
from mnist_pipeline.plumbing.files import atomic_files, check_model_file
from mnist_pipeline.reading.classifiers import Classifier, load_classifier


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
    test_report = report(
        test["x_test"], actual, probabilities, params.misread_count, "the test set"
    )
    field_x, field_actual, field_probabilities = read_field(classifier)
    field_report = report(
        field_x, field_actual, field_probabilities, params.misread_count, "the field set"
    )
    metrics = {
        **score_test_set(actual, probabilities, test_report.per_class),
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
        test_report.write(*files[:3])
        field_report.write(*files[3:])


if __name__ == "__main__":
    cli.run(main, argparse.ArgumentParser(prog="evaluate", description=__doc__))
