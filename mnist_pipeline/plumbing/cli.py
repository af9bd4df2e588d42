"""What every command shares: argparse, logging, and bad input as one line, not a traceback."""

import argparse
import atexit
import logging
import os
import sys
from collections.abc import Callable
from typing import NoReturn

from mnist_pipeline.plumbing import paths
from mnist_pipeline.plumbing.errors import ModelFileError, PipelineError

# What makes a model file that is missing or no model (ModelFileError): for a stage, whose model
# an earlier stage writes, and for a command that reads digits (--model).
MAKE_MODEL_HINT = "run `dvc repro` to make it"
MISSING_MODEL_HINT = "run `dvc repro` in the project first, or name the model with --model PATH"


def run(
    main: Callable[[argparse.Namespace], int | None],
    parser: argparse.ArgumentParser,
    skip_teardown: bool = False,
    model_hint: str = MAKE_MODEL_HINT,
) -> None:
    """Parse arguments, set up logging, call `main(args)` and exit with the status it returns.

    A PipelineError (or an OSError, such as a full disk) ends the command with
    `<prog>: error: <message>` on stderr and exit status 1, a ModelFileError followed by
    `; <model_hint>`: what makes the model. `skip_teardown`, for commands that
    import TensorFlow (or may: a .keras model), is a speed device (benchmarks/speedups.py): see
    exit_without_teardown.
    """
    parser.add_argument("-v", "--verbose", action="store_true", help="log our debug messages too")
    args = parser.parse_args()
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # Our own progress lines (the library's, and the command's when run as a script), and our
    # debug lines with --verbose; the INFO lines of the libraries underneath (TensorFlow's
    # "Assets written to", boto's "Found credentials") only with --verbose, and their debug
    # lines (PIL's PNG chunks, h5py, pydot) never.
    for ours in ("mnist_pipeline", "__main__"):
        logging.getLogger(ours).setLevel(logging.DEBUG if args.verbose else logging.INFO)
    try:
        status = main(args) or 0
    except ModelFileError as error:
        parser.exit(1, f"{parser.prog}: error: {error}; {model_hint}\n")
    except (PipelineError, OSError) as error:
        parser.exit(1, f"{parser.prog}: error: {error}\n")
    except KeyboardInterrupt:
        parser.exit(130, f"{parser.prog}: interrupted\n")
    if skip_teardown:
        exit_without_teardown(status)
    sys.exit(status)


def observed() -> bool:
    """Whether a profiler, tracer or debugger watches this process: through sys.setprofile or
    sys.settrace, or, from Python 3.12, sys.monitoring (cProfile's and coverage's way there)."""
    if sys.getprofile() is not None or sys.gettrace() is not None:
        return True
    monitoring = getattr(sys, "monitoring", None)
    return monitoring is not None and any(monitoring.get_tool(tool) for tool in range(6))


def exit_without_teardown(status: int) -> NoReturn:
    """Run the atexit handlers, then end the process without the rest of the interpreter's
    teardown, which unloads TensorFlow's modules one by one. Only once every output is
    written and closed; and not while a profiler or tracer watches (it writes after exit)."""
    if observed():
        sys.exit(status)
    atexit._run_exitfuncs()  # what a normal exit runs first: coverage's data, logging's flush
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


def integer_in(low: int, high: int, what: str = "an integer") -> Callable[[str], int]:
    """argparse type: an integer from `low` to `high`; `what` names it in the error."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = low - 1
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"expected {what} {low}-{high}, got {text!r}")
        return value

    return parse


def add_model_option(parser: argparse.ArgumentParser, repeatable: bool = False) -> None:
    """--model, for every command that reads digits with a trained model (registry.resolve)."""
    parser.add_argument(
        "--model",
        action="append" if repeatable else "store",
        default=None if repeatable else str(paths.SERVING_MODEL_FILE),
        metavar="MODEL",
        help=f"a model file (default: {paths.SERVING_MODEL_FILE}, the LiteRT export; a .keras "
        "archive loads slower, through TensorFlow), NAME@VERSION or NAME#STAGE of the model "
        "registry, or a git revision or experiment name of this repository"
        + ("; give it twice to compare two models" if repeatable else ""),
    )
