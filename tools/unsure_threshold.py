"""Where should a reading count as unsure ("not sure this is a digit")? For each threshold, how
many misread digits a rule "unsure below it" flags, and how many right readings it flags wrongly,
on MNIST's test set and on the collection drawings/ (all of it: the model never trained on its
field set, and with train.drawings 0 on none of it), read by the committed model. The figures
behind classifiers.UNSURE_BELOW (docs/collecting.md). Run after `dvc repro`:
python tools/unsure_threshold.py"""

import argparse
from pathlib import Path

import numpy as np

from mnist_pipeline.data.collection import load_drawings
from mnist_pipeline.data.preprocessing import normalize_pixels
from mnist_pipeline.plumbing import cli, paths
from mnist_pipeline.plumbing.arrays import load_arrays
from mnist_pipeline.reading.classifiers import UNSURE_BELOW, load_classifier

THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.99)


def flagged(probabilities: np.ndarray, actual: np.ndarray, threshold: float) -> tuple[int, int]:
    """(misreads flagged, right readings flagged) by "unsure below `threshold`"."""
    unsure = probabilities.max(axis=1) < threshold
    right = probabilities.argmax(axis=1) == actual
    return int(np.sum(unsure & ~right)), int(np.sum(unsure & right))


def share(count: int, total: int) -> str:
    return f"{count} ({count / total:.1%})" if total else "0"


def table(probabilities: np.ndarray, actual: np.ndarray, thresholds: tuple[float, ...]) -> str:
    """A line per threshold: the misreads it flags, and the right readings it flags wrongly."""
    misread = int(np.sum(probabilities.argmax(axis=1) != actual))
    lines = [
        f"{len(actual):,} digits, {misread} misread",
        "threshold  misreads flagged  right readings flagged",
    ]
    for threshold in thresholds:
        misreads, rights = flagged(probabilities, actual, threshold)
        mark = "*" if threshold == UNSURE_BELOW else " "
        lines.append(
            f"{threshold:>8.2f}{mark}  {share(misreads, misread):>16}  "
            f"{share(rights, len(actual) - misread):>22}"
        )
    return "\n".join(lines)


def main(args: argparse.Namespace) -> None:
    classifier = load_classifier(args.model)
    print(f"read with {args.model}; * marks classifiers.UNSURE_BELOW")
    test = load_arrays(paths.RAW_DIR, ("x_test", "y_test"))
    print(f"MNIST's test set ({paths.RAW_DIR}): ", end="")
    print(table(classifier(normalize_pixels(test["x_test"])), test["y_test"], args.thresholds))
    drawings = load_drawings(args.drawings)
    print(f"\nthe collection ({args.drawings}): ", end="")
    if len(drawings.labels) == 0:
        print("no drawings")
        return
    print(table(classifier(normalize_pixels(drawings.pixels)), drawings.labels, args.thresholds))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="unsure_threshold", description=__doc__)
    parser.add_argument("--model", type=Path, default=paths.SERVING_MODEL_FILE)
    parser.add_argument("--drawings", type=Path, default=paths.DRAWINGS_DIR)
    parser.add_argument("--thresholds", type=float, nargs="+", default=THRESHOLDS)
    cli.run(main, parser)
