"""Compare two models digit by digit over the MNIST test set.

Prints how many of the test digits both models read right, both wrong, and each one alone, and
draws the digits they read differently (each with its true label and both answers). A model is
named as `--model` names one (a file, NAME@VERSION, NAME#STAGE, a git revision or an experiment);
for a committed one, its committed reports/evaluate/predictions.csv is read instead of running it.
"""

import argparse
import io
import logging
import stat
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from mnist_pipeline.data.dataset import NUM_CLASSES
from mnist_pipeline.data.preprocessing import check_prepared
from mnist_pipeline.evaluation.metrics import PREDICTIONS_COLUMNS
from mnist_pipeline.evaluation.sheets import draw_digits
from mnist_pipeline.plumbing import cli, paths
from mnist_pipeline.plumbing.arrays import load_arrays
from mnist_pipeline.plumbing.errors import PipelineError, one_line
from mnist_pipeline.plumbing.files import atomic_file
from mnist_pipeline.reading import registry
from mnist_pipeline.reading.classifiers import load_classifier
from mnist_pipeline.reading.registry import ModelSource

PROG = "mnist-compare"
DEFAULT_PICTURE = Path("compare.png")
# What else a path may be than a regular file, each as --out's refusal names it.
SPECIAL_FILES = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISFIFO, "a named pipe"),
    (stat.S_ISSOCK, "a socket"),
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Agreement:
    """How two models' answers over the same digits split by who read them right."""

    both_right: int
    both_wrong: int
    only_first: int
    only_second: int


def agreement(actual: np.ndarray, first: np.ndarray, second: np.ndarray) -> Agreement:
    """Count the digits each of two sets of predicted digits reads right, against `actual`."""
    first_right, second_right = first == actual, second == actual
    return Agreement(
        both_right=int(np.sum(first_right & second_right)),
        both_wrong=int(np.sum(~first_right & ~second_right)),
        only_first=int(np.sum(first_right & ~second_right)),
        only_second=int(np.sum(~first_right & second_right)),
    )


def committed_predictions(source: ModelSource, actual: np.ndarray) -> np.ndarray | None:
    """The digits the evaluate stage committed for `source`'s revision, or None where there is
    no such table (a model file of the workspace, a revision without it)."""
    if source.revision is None:
        return None
    import dvc.api
    from dvc.exceptions import PathMissingError

    try:
        text = dvc.api.read(str(paths.PREDICTIONS_FILE), rev=source.revision)
    except PathMissingError:
        return None
    except UnicodeDecodeError as error:  # dvc.api.read decodes it as UTF-8
        raise PipelineError(
            f"{source.reference}: its committed {paths.PREDICTIONS_FILE} is not what evaluate "
            f"writes (not UTF-8 text: {error.reason} at byte {error.start})"
        ) from None
    table = read_predictions(source, text)
    if not np.array_equal(table["actual"].to_numpy(), actual):
        raise PipelineError(
            f"{source.reference}: its {paths.PREDICTIONS_FILE} is of another test set than "
            f"{paths.PREPARED_DIR}"
        )
    return table["predicted"].to_numpy()


def read_predictions(source: ModelSource, text: str) -> pd.DataFrame:
    """A committed predictions table as evaluate writes it (its two columns of digits 0-9), or
    one line saying how this one differs."""
    try:
        table = pd.read_csv(io.StringIO(text))
    except (pd.errors.EmptyDataError, pd.errors.ParserError) as error:
        problem = one_line(error)
    else:
        columns = tuple(table.columns)
        if columns != PREDICTIONS_COLUMNS:
            expected = ", ".join(PREDICTIONS_COLUMNS)
            problem = f"columns {', '.join(map(str, columns))}, not {expected}"
        elif not all(pd.api.types.is_integer_dtype(dtype) for dtype in table.dtypes):
            problem = "values that are not whole numbers, or none"
        elif not table.isin(range(NUM_CLASSES)).all(axis=None):
            problem = f"numbers other than the digits 0-{NUM_CLASSES - 1}"
        else:
            return table
    raise PipelineError(
        f"{source.reference}: its committed {paths.PREDICTIONS_FILE} is not what evaluate writes "
        f"({problem})"
    )


def check_out(path: Path) -> None:
    """Refuse an --out other than a regular file (or a link to one) or a new name in an existing
    folder: the picture replaces it, and a device or pipe (`/dev/null`) must not be replaced."""
    if not path.parent.is_dir():
        raise PipelineError(f"--out {path}: no folder {path.parent}; make it first")
    if path.exists() and not path.is_file():
        mode = path.stat().st_mode
        kind = next(name for is_kind, name in SPECIAL_FILES if is_kind(mode))
        raise PipelineError(f"--out {path}: {kind}, not a regular file; name a PNG file to write")


def predictions(source: ModelSource, pixels: np.ndarray, actual: np.ndarray) -> np.ndarray:
    """What `source` reads each test digit as: its committed table, or the model run on them."""
    committed = committed_predictions(source, actual)
    if committed is not None:
        log.info("%s: its committed %s", source.label(), paths.PREDICTIONS_FILE)
        return committed
    log.info("%s: reading the %d test digits", source.label(), len(pixels))
    return load_classifier(registry.local_file(source))(pixels).argmax(axis=1)


def draw_changes(
    pixels: np.ndarray, actual: np.ndarray, first: np.ndarray, second: np.ndarray, count: int
) -> tuple[np.ndarray, Image.Image]:
    """The first `count` digits the two read differently, captioned `true: A x, B y`."""
    differ = np.flatnonzero(first != second)
    changed = differ[:count]
    captions = [f"{actual[i]}: A {first[i]}, B {second[i]}" for i in changed]
    empty = (
        f"{len(differ)} read differently, none drawn"
        if len(differ)
        else "no digit read differently"
    )
    return changed, draw_digits(pixels[changed], captions, empty=empty)


def main(args: argparse.Namespace) -> None:
    check_out(args.out)
    sources = [registry.resolve(reference) for reference in args.models]
    test = load_arrays(paths.PREPARED_DIR, ("x_test", "y_test"), mmap=True)
    check_prepared(test["x_test"], test["y_test"], origin=str(paths.PREPARED_DIR))
    actual = test["y_test"].argmax(axis=1)
    first, second = (predictions(source, test["x_test"], actual) for source in sources)
    counts = agreement(actual, first, second)
    changed, sheet = draw_changes(test["x_test"], actual, first, second, args.count)
    with atomic_file(args.out) as picture:
        sheet.save(picture, format="PNG")
    a, b = (source.label() for source in sources)
    print(f"A: {a}\nB: {b}")
    print(f"of {len(actual)} test digits:")
    print(f"  both right    {counts.both_right:6}")
    print(f"  both wrong    {counts.both_wrong:6}")
    print(f"  A right only  {counts.only_first:6}")
    print(f"  B right only  {counts.only_second:6}")
    print(f"{np.sum(first != second)} read differently; {len(changed)} of them drawn in {args.out}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("models", nargs=2, metavar="MODEL", help="model A, then model B")
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_PICTURE,
        help=f"picture of the digits read differently (default: {DEFAULT_PICTURE})",
    )
    parser.add_argument(
        "--count",
        type=cli.integer_in(0, 10_000),
        default=100,
        help="at most this many of them drawn, in test-set order (default 100)",
    )
    return parser


def console() -> None:
    """The `mnist-compare` console script."""
    cli.run(main, build_parser(), model_hint=cli.MISSING_MODEL_HINT)


if __name__ == "__main__":
    console()
