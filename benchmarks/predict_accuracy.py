"""Benchmark: how well `predict` reads real MNIST test digits handed to it as pictures.

The first --count digits of the test set are rendered (tests/support/pictures.py, as the tests
render them) as large off-centre drawings and as phone photos of paper (half of them ruled), saved
as JPEG files and read by `predict` exactly as a user's files are. Prints, for each kind, how often
its answer agrees with the model's answer on the 28x28 original, and how often it is the true
digit.
Usage: `python -m benchmarks.predict_accuracy [--count 1000]` after `dvc repro`.
"""

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

from mnist_pipeline.plumbing import paths
from mnist_pipeline.plumbing.arrays import load_array
from mnist_pipeline.predict import predict
from mnist_pipeline.reading.classifiers import classify, load_classifier
from tests.support.pictures import off_centre_drawing, paper_photo

KINDS = {
    "off-centre drawing": lambda digit, rng, number: off_centre_drawing(digit, rng),
    "paper photo": lambda digit, rng, number: paper_photo(digit, rng, ruled=number % 2 == 1),
}


def mnist_test_digits(count: int) -> tuple[np.ndarray, np.ndarray]:
    """The first `count` MNIST test digits (uint8, 28x28) and their labels, from data/raw/."""
    return (
        load_array(paths.RAW_DIR / "x_test.npy")[:count],
        load_array(paths.RAW_DIR / "y_test.npy")[:count],
    )


def read_originals(model: Path, digits: np.ndarray) -> np.ndarray:
    """The digit `model` reads in each 28x28 original."""
    return classify(load_classifier(model), list(digits)).argmax(axis=1)


def render(digits: np.ndarray, kind: str, seed: int, folder: Path) -> list[Path]:
    """Each digit as a picture of `kind` (a key of KINDS), saved as a JPEG file in `folder`."""
    rng = np.random.default_rng(seed)
    files = []
    for number, digit in enumerate(digits):
        files.append(folder / f"{number:05}.jpg")
        files[-1].write_bytes(KINDS[kind](digit, rng, number))
    return files


def read_pictures(files: list[Path], model: Path) -> np.ndarray:
    """The digit `predict` reads with `model` in each file, as a user's files are read; -1 where
    it finds no digit."""
    return np.array([-1 if isinstance(r, str) else r.digit for r in predict(files, model)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000, help="test digits (default 1000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the renderings")
    args = parser.parse_args()
    if not paths.SERVING_MODEL_FILE.is_file():
        sys.exit("predict_accuracy: no models/model.tflite; run `dvc repro` first")
    digits, labels = mnist_test_digits(args.count)
    on_originals = read_originals(paths.SERVING_MODEL_FILE, digits)
    print(f"{len(digits)} MNIST test digits; the model reads {np.mean(on_originals == labels):.1%}"
          " of the 28x28 originals right")  # fmt: skip

    for kind in KINDS:
        with tempfile.TemporaryDirectory() as folder:
            read = read_pictures(
                render(digits, kind, args.seed, Path(folder)), paths.SERVING_MODEL_FILE
            )
        print(
            f"{kind:<20} agrees with the original {np.mean(read == on_originals):6.1%}, "
            f"true digit {np.mean(read == labels):6.1%}, unreadable {np.mean(read == -1):5.1%}"
        )


if __name__ == "__main__":
    main()
