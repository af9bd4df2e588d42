"""Stage evaluate: score the served model (the LiteRT export) on the test set; write metrics,
tables and misread digits."""

import argparse
import json

from mnist_pipeline.data.preprocessing import check_prepared
from mnist_pipeline.evaluation.metrics import (
    confusion_matrix,
    most_confident_mistakes,
    per_class_metrics,
    predictions_table,
    score_test_set,
)
from mnist_pipeline.evaluation.sheets import draw_mistakes
from mnist_pipeline.params import EvaluateParams, load_section
from mnist_pipeline.plumbing import cli, paths
from mnist_pipeline.plumbing.arrays import load_arrays
from mnist_pipeline.plumbing.files import atomic_files, check_model_file
from mnist_pipeline.reading.classifiers import load_classifier


def main(args: argparse.Namespace) -> None:
    params = load_section(EvaluateParams)
    test = load_arrays(paths.PREPARED_DIR, ("x_test", "y_test"), mmap=True)
    check_prepared(test["x_test"], test["y_test"], origin=str(paths.PREPARED_DIR))
    check_model_file(paths.SERVING_MODEL_FILE)  # the one check of the model load
    probabilities = load_classifier(paths.SERVING_MODEL_FILE)(test["x_test"])
    actual = test["y_test"].argmax(axis=1)
    predictions = predictions_table(actual, probabilities)
    per_class = per_class_metrics(confusion_matrix(actual, predictions["predicted"]))
    mistakes = most_confident_mistakes(actual, probabilities, params.misread_count)

    # All four or none: a failure midway must not leave reports of two different models.
    with atomic_files(
        paths.METRICS_FILE, paths.PREDICTIONS_FILE, paths.PER_CLASS_FILE, paths.MISREAD_IMAGE
    ) as (metrics_file, predictions_file, per_class_file, image_file):
        metrics = score_test_set(actual, probabilities, per_class)
        metrics_file.write_text(json.dumps(metrics, indent=2) + "\n")
        predictions.to_csv(predictions_file, index=False)
        per_class.to_csv(per_class_file)
        sheet = draw_mistakes(test["x_test"], actual, probabilities, mistakes)
        sheet.save(image_file, format="PNG")


if __name__ == "__main__":
    cli.run(main, argparse.ArgumentParser(prog="evaluate", description=__doc__))
