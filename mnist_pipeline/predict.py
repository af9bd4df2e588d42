"""Read the digit in each image file (or .npy array) with the trained model.

Prints which model reads, then one line per input: the file, the digit, its probability and the
runner-up, and "not sure this is a digit" when the model is too unsure to trust. A file that
cannot be read is reported on stderr and skipped; the exit status is then 1.

With --label D --save DIR, each picture is also added to the collection DIR (drawings/) as a
drawing of the digit D, prepared as the web page prepares drawings, and a line says where it went.

Images (PNG, JPEG, BMP, GIF, ...; any size; colour, grayscale, palette or transparent) are
prepared as MNIST's digits were: grayscale, light digit on dark, cropped to the ink, scaled to
fit 20x20, centred by mass in 28x28. A .npy file holds one digit already in that form: 28x28
integers 0-255 (as data/raw stores them) or floats in [0, 1].
"""

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

import numpy as np

from mnist_pipeline.data.collection import save_drawing
from mnist_pipeline.plumbing import cli
from mnist_pipeline.plumbing.errors import PipelineError, one_line
from mnist_pipeline.reading import registry
from mnist_pipeline.reading.classifiers import Reading, classify, load_classifier, top_two
from mnist_pipeline.reading.imaging import read_digit
from mnist_pipeline.reading.registry import ModelSource

PROG = "predict"
# What a reading the model is too unsure of says (classifiers.UNSURE_BELOW; the page says it too).
UNSURE_TEXT = "not sure this is a digit"

log = logging.getLogger(__name__)


def prepare(file: Path) -> np.ndarray | str:
    """The file's 28x28 digit, or the one line that says why it has none (also on stderr).

    Any failure is that file's line: running out of memory, or a decoder's own error, on one file
    must not cost the readings of the others.
    """
    try:
        digit = read_digit(file)
    except PipelineError as error:
        message = str(error)
    except Exception as error:
        log.debug("%s: reading failed", file, exc_info=True)  # the traceback, with --verbose
        message = f"{file}: cannot read: {one_line(error)}"
    else:
        log.debug("%s: prepared as a 28x28 digit", file)
        return digit
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return message


def predict(files: list[Path], model: Path) -> list[Reading | str]:
    """A Reading per file, or the one-line error that stopped it, in the order given."""
    return read([prepare(file) for file in files], model)


def read(prepared: list[np.ndarray | str], model: Path) -> list[Reading | str]:
    """A Reading per prepared digit; an error line (prepare's) stays as it is."""
    digits = [digit for digit in prepared if isinstance(digit, np.ndarray)]
    if not digits:  # nothing to read: the model need not load
        return prepared
    classifier = load_classifier(model)
    readings = iter([top_two(row) for row in classify(classifier, digits)])
    return [next(readings) if isinstance(digit, np.ndarray) else digit for digit in prepared]


def as_text(file: Path, reading: Reading) -> str:
    text = (
        f"{file}: {reading.digit} ({reading.probability:.1%}), "
        f"runner-up {reading.runner_up} ({reading.runner_up_probability:.1%})"
    )
    return f"{text}; {UNSURE_TEXT}" if reading.unsure else text


def parse_label(text: str) -> int:
    """--label's digit; anything but one of 0-9 is a PipelineError."""
    if len(text) != 1 or text not in "0123456789":
        raise PipelineError(f"--label must be a digit 0-9, got {text!r}")
    return int(text)


def save(folder: Path, file: Path, digit: np.ndarray, label: int) -> str:
    """File the prepared digit of `file` in the collection `folder` under `label`; say where."""
    saved = save_drawing(folder, digit, label)
    if saved.relabelled is not None:
        return f"{file}: relabelled {saved.relabelled} -> {label}, moved to {saved.path}"
    return f"{file}: {'added as' if saved.added else 'already there as'} {saved.path}"


def as_json(file: Path, outcome: Reading | str, source: ModelSource) -> dict[str, object]:
    if isinstance(outcome, str):
        return {"file": str(file), "error": outcome}
    return {"file": str(file), **outcome.as_dict(), "model": source.as_dict()}


def main(args: argparse.Namespace) -> int:
    label = None if args.label is None else parse_label(args.label)  # before any work
    source = registry.resolve(args.model)
    model = registry.local_file(source)  # a reference that fails stops before any picture is read
    prepared = [prepare(file) for file in args.images]
    outcomes = list(zip(args.images, read(prepared, model), strict=True))
    if args.json:
        print(json.dumps([as_json(file, outcome, source) for file, outcome in outcomes], indent=2))
    else:
        print(f"read with {source.label()}")
        for file, outcome in outcomes:
            if isinstance(outcome, Reading):
                print(as_text(file, outcome))
    if label is not None:
        for file, digit in zip(args.images, prepared, strict=True):
            if isinstance(digit, np.ndarray):  # as the network was given it, as the page saves
                print(save(args.save, file, digit, label), file=sys.stderr if args.json else None)
    return 0 if all(isinstance(outcome, Reading) for _, outcome in outcomes) else 1


class PredictParser(argparse.ArgumentParser):
    """predict's arguments, --label and --save both or neither."""

    def parse_args(self, *args: Any, **kwargs: Any) -> argparse.Namespace:  # type: ignore[override]
        parsed = super().parse_args(*args, **kwargs)
        if (parsed.label is None) != (parsed.save is None):
            self.error("--label and --save go together: the digit the pictures show, and where")
        return parsed


def build_parser() -> argparse.ArgumentParser:
    parser = PredictParser(
        prog=PROG,
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("images", nargs="+", type=Path, metavar="IMAGE", help="image or .npy file")
    cli.add_model_option(parser)
    parser.add_argument(
        "--json",
        action="store_true",
        help="print a JSON list, one object per input; unreadable ones carry an `error` field",
    )
    parser.add_argument(
        "--label",
        metavar="D",
        help="the digit 0-9 the pictures show: add them to the collection given by --save",
    )
    parser.add_argument(
        "--save",
        type=Path,
        metavar="DIR",
        help="a collection of labelled drawings (drawings/, docs/collecting.md): each picture is "
        "filed there under --label as the network was given it; says whether it was added, "
        "already there, or moved from another digit",
    )
    return parser


def console() -> None:
    """The `mnist-predict` console script."""
    cli.run(main, build_parser(), skip_teardown=True, model_hint=cli.MISSING_MODEL_HINT)


if __name__ == "__main__":
    console()
