"""What every command shares: argparse, logging, and bad input as one line, not a traceback."""

import argparse
import atexit
import contextlib
import gc
import logging
import os
import sys
from collections.abc import Callable, Iterator

from mnist_pipeline.errors import PipelineError


@contextlib.contextmanager
def importing_tensorflow() -> Iterator[None]:
    """Import TensorFlow inside this block: the cyclic garbage collector pauses meanwhile, and
    what the import made is frozen afterwards (gc.freeze), so no later collection scans it again.

    Importing Keras makes about half a million long-lived objects; the collections that would
    run midway, and again during training, cost the train stage about a second of its six.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if was_enabled:
            gc.enable()


def observed() -> bool:
    """Whether a profiler, tracer or debugger watches this process: through sys.setprofile or
    sys.settrace, or, from Python 3.12, sys.monitoring (cProfile's and coverage's way there)."""
    if sys.getprofile() is not None or sys.gettrace() is not None:
        return True
    monitoring = getattr(sys, "monitoring", None)
    return monitoring is not None and any(monitoring.get_tool(tool) for tool in range(6))


def run(
    main: Callable[[argparse.Namespace], int | None],
    parser: argparse.ArgumentParser,
    skip_teardown: bool = False,
) -> None:
    """Parse arguments, set up logging, call `main(args)` and exit with the status it returns.

    A PipelineError (or an OSError, such as a full disk) ends the command with
    `<prog>: error: <message>` on stderr and exit status 1.

    `skip_teardown`, for commands that import TensorFlow: once `main` has returned (its files
    are written, closed and renamed), run the atexit handlers and end the process without the
    rest of the interpreter's teardown, which spends about a second unloading TensorFlow's
    modules. Not while a profiler or tracer (cProfile, coverage, a debugger) is attached: it
    writes its results after the command returns.
    """
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages too")
    args = parser.parse_args()
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        status = main(args) or 0
    except (PipelineError, OSError) as error:
        parser.exit(1, f"{parser.prog}: error: {error}\n")
    except KeyboardInterrupt:
        parser.exit(130, f"{parser.prog}: interrupted\n")
    if skip_teardown and not observed():
        atexit._run_exitfuncs()  # what a normal exit runs first: coverage's data, logging's flush
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    sys.exit(status)
