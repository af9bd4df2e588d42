"""Read the digit in each image file (or .npy array) with the trained model.

Prints which model reads, then one line per input: the file, the digit, its probability and the
runner-up. A file that cannot be read is reported on stderr and skipped; the exit status is then
1.

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

import numpy as np

from mnist_pipeline.plumbing import cli
from mnist_pipeline.plumbing.errors import PipelineError, one_line
from mnist_pipeline.reading import registry
from mnist_pipeline.reading.classifiers import Reading, classify, load_classifier, top_two
from mnist_pipeline.reading.imaging import read_digit
from mnist_pipeline.reading.registry import ModelSource

PROG = "predict"

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
    prepared = [prepare(file) for file in files]
    digits = [digit for digit in prepared if isinstance(digit, np.ndarray)]
    if not digits:  # nothing to read: the model need not load
        return prepared
    classifier = load_classifier(model)
    readings = iter([top_two(row) for row in classify(classifier, digits)])
    return [next(readings) if isinstance(digit, np.ndarray) else digit for digit in prepared]


def as_text(file: Path, reading: Reading) -> str:
    return (
        f"{file}: {reading.digit} ({reading.probability:.1%}), "
        f"runner-up {reading.runner_up} ({reading.runner_up_probability:.1%})"
    )


def as_json(file: Path, outcome: Reading | str, source: ModelSource) -> dict[str, object]:
    if isinstance(outcome, str):
        return {"file": str(file), "error": outcome}
    return {"file": str(file), **outcome.as_dict(), "model": source.as_dict()}


def main(args: argparse.Namespace) -> int:
    source = registry.resolve(args.model)
    outcomes = list(
        zip(args.images, predict(args.images, registry.local_file(source)), strict=True)
    )
    if args.json:
        print(json.dumps([as_json(file, outcome, source) for file, outcome in outcomes], indent=2))
    else:
        print(f"read with {source.label()}")
        for file, outcome in outcomes:
            if isinstance(outcome, Reading):
                print(as_text(file, outcome))
    return 0 if all(isinstance(outcome, Reading) for _, outcome in outcomes) else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
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
    return parser


def console() -> None:
    """The `mnist-predict` console script."""
    cli.run(main, build_parser(), skip_teardown=True, model_hint=cli.MISSING_MODEL_HINT)


if __name__ == "__main__":
    console()
