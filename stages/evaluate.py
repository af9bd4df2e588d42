"""Stage evaluate: score the model on the test set; write metrics, predictions, misread digits."""

import argparse
import json

import numpy as np

from mnist_pipeline import cli, paths
from mnist_pipeline.dataset import IMAGE_SHAPE
from mnist_pipeline.evaluation import draw_mistakes, most_confident_mistakes, score_test_set
from mnist_pipeline.files import atomic_file, load_arrays
from mnist_pipeline.params import EvaluateParams, load_section
from mnist_pipeline.preprocessing import check_prepared


def main(args: argparse.Namespace) -> None:
    params = load_section(EvaluateParams)
    test = load_arrays(paths.PREPARED_DIR, ("x_test", "y_test"), mmap=True)
    check_prepared(test["x_test"], test["y_test"], origin=str(paths.PREPARED_DIR))
    # TensorFlow takes seconds to import: bad params and data are reported before that.
    from mnist_pipeline.training import load_model

    model = load_model(paths.MODEL_FILE)
    probabilities = model.predict(test["x_test"], batch_size=1024, verbose=0)
    actual = test["y_test"].argmax(axis=1)

    with atomic_file(paths.METRICS_FILE) as metrics_file:
        metrics_file.write_text(json.dumps(score_test_set(actual, probabilities), indent=2) + "\n")

    with atomic_file(paths.PREDICTIONS_FILE) as predictions_file:
        predicted = probabilities.argmax(axis=1)
        np.savetxt(
            predictions_file,
            np.column_stack([actual, predicted]),
            fmt="%d",
            delimiter=",",
            header="actual,predicted",
            comments="",
        )

    images = test["x_test"].reshape(-1, *IMAGE_SHAPE)
    mistakes = most_confident_mistakes(actual, probabilities, params.misread_count)
    with atomic_file(paths.MISREAD_IMAGE) as image_file:
        draw_mistakes(images, actual, probabilities, mistakes).save(image_file, format="PNG")


if __name__ == "__main__":
    cli.run(main, argparse.ArgumentParser(prog="evaluate", description=__doc__), skip_teardown=True)
