"""Read the digit in each image file (or .npy array) with the trained model.

Prints one line per input: the file, the digit, its probability and the runner-up. A file that
cannot be read is reported on stderr and skipped; the exit status is then 1.

Images (PNG, JPEG, BMP, GIF, ...; any size; colour, grayscale, palette or transparent) are
prepared as MNIST's digits were: grayscale, light digit on dark, cropped to the ink, scaled to
fit 20x20, centred by mass in 28x28. A .npy file holds one digit already in that form: 28x28
integers 0-255 (as data/raw stores them) or floats in [0, 1].
"""

import argparse
import json
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mnist_pipeline import cli, paths
from mnist_pipeline.dataset import NUM_CLASSES
from mnist_pipeline.errors import PipelineError
from mnist_pipeline.files import check_model_file
from mnist_pipeline.imaging import read_digit
from mnist_pipeline.preprocessing import INPUT_SIZE, normalize_pixels

if TYPE_CHECKING:
    import keras

PROG = "predict"
MISSING_MODEL_HINT = "run `dvc repro` in the project first, or name the model with --model PATH"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Reading:
    """What the model made of one input, or why the input could not be read."""

    file: Path
    digit: int | None = None
    probability: float | None = None
    runner_up: int | None = None
    runner_up_probability: float | None = None
    error: str | None = None

    def as_text(self) -> str:
        return (
            f"{self.file}: {self.digit} ({self.probability:.1%}), "
            f"runner-up {self.runner_up} ({self.runner_up_probability:.1%})"
        )

    def as_json(self) -> dict[str, object]:
        if self.error is not None:
            return {"file": str(self.file), "error": self.error}
        return {
            "file": str(self.file),
            "digit": self.digit,
            "probability": round(self.probability, 6),
            "runner_up": self.runner_up,
            "runner_up_probability": round(self.runner_up_probability, 6),
        }


def top_two(file: Path, probabilities: np.ndarray) -> Reading:
    """The most and second most probable digits of one softmax row."""
    first, second = np.argsort(-probabilities, kind="stable")[:2]
    return Reading(
        file,
        digit=int(first),
        probability=float(probabilities[first]),
        runner_up=int(second),
        runner_up_probability=float(probabilities[second]),
    )


def load_classifier(model_path: Path) -> "keras.Model":
    """Load the trained model and check it maps 784 normalized pixels to 10 digit probabilities."""
    with cli.importing_tensorflow():  # only when needed
        from mnist_pipeline.training import load_model

    model = load_model(model_path)
    expected = ((None, INPUT_SIZE), (None, NUM_CLASSES))
    if (tuple(model.input_shape), tuple(model.output_shape)) != expected:
        raise PipelineError(
            f"{model_path}: not a digit classifier (takes {model.input_shape}, gives "
            f"{model.output_shape}; expected {INPUT_SIZE} pixels -> {NUM_CLASSES} digits)"
        )
    return model


def classify(model: "keras.Model", digits: list[np.ndarray]) -> np.ndarray:
    """uint8 (28, 28) digits -> (N, 10) probabilities, through the pipeline's one normalization.

    The model is called directly: for the few pictures a person hands over, `model.predict`'s
    per-call set-up costs about 40x the network itself (43 ms against 1 ms for one digit here).
    """
    return np.asarray(model(normalize_pixels(np.stack(digits)), training=False))


def read_input(file: Path) -> np.ndarray:
    """read_digit, with any failure as a PipelineError: one line naming the file. Running out of
    memory, or a decoder's own error, on one file must not cost the readings of the others."""
    try:
        return read_digit(file)
    except PipelineError:
        raise
    except Exception as error:
        log.debug("%s: reading failed", file, exc_info=True)  # the traceback, with --verbose
        detail = " ".join(str(error).split())
        reason = f"{type(error).__name__}: {detail}" if detail else type(error).__name__
        raise PipelineError(f"{file}: cannot read: {reason}") from None


def predict(files: list[Path], model_path: Path) -> list[Reading]:
    """One Reading per file, in order; an unreadable file is reported on stderr and carried on."""
    # Before TensorFlow loads (seconds, and noise on stderr): is there a model at all?
    check_model_file(model_path, hint=MISSING_MODEL_HINT)
    digits: dict[int, np.ndarray] = {}
    errors: dict[int, str] = {}
    for index, file in enumerate(files):
        try:
            digits[index] = read_input(file)
        except PipelineError as error:
            errors[index] = str(error)
            print(f"{PROG}: error: {error}", file=sys.stderr)
        else:
            log.debug("%s: prepared as a 28x28 digit", file)
    probabilities: dict[int, np.ndarray] = {}
    if digits:  # the model loads once, and not at all when no file could be read
        model = load_classifier(model_path)
        probabilities = dict(zip(digits, classify(model, list(digits.values())), strict=True))
    return [
        Reading(file, error=errors[index])
        if index in errors
        else top_two(file, probabilities[index])
        for index, file in enumerate(files)
    ]


def main(args: argparse.Namespace) -> int:
    readings = predict(args.images, args.model)
    if args.json:
        print(json.dumps([reading.as_json() for reading in readings], indent=2))
    else:
        for reading in readings:
            if reading.error is None:
                print(reading.as_text())
    return 1 if any(reading.error is not None for reading in readings) else 0


def add_model_option(parser: argparse.ArgumentParser) -> None:
    """--model, for every command that reads digits with the trained model."""
    parser.add_argument(
        "--model",
        type=Path,
        default=paths.MODEL_FILE,
        metavar="PATH",
        help=f"trained Keras model (default: {paths.MODEL_FILE})",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("images", nargs="+", type=Path, metavar="IMAGE", help="image or .npy file")
    add_model_option(parser)
    parser.add_argument(
        "--json",
        action="store_true",
        help="print a JSON list, one object per input; unreadable ones carry an `error` field",
    )
    return parser


def console() -> None:
    """The `mnist-predict` console script."""
    cli.run(main, build_parser(), skip_teardown=True)


if __name__ == "__main__":
    console()
