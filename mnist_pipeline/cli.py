"""What every command shares: argparse, logging, and bad input as one line, not a traceback."""

import argparse
import logging
import sys
from collections.abc import Callable

from mnist_pipeline.errors import PipelineError


def run(main: Callable[[argparse.Namespace], int | None], parser: argparse.ArgumentParser) -> None:
    """Parse arguments, set up logging, call `main(args)` and exit with the status it returns.

    A PipelineError (or an OSError, such as a full disk) ends the command with
    `<prog>: error: <message>` on stderr and exit status 1.
    """
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages too")
    args = parser.parse_args()
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        status = main(args)
    except (PipelineError, OSError) as error:
        parser.exit(1, f"{parser.prog}: error: {error}\n")
    except KeyboardInterrupt:
        parser.exit(130, f"{parser.prog}: interrupted\n")
    sys.exit(status or 0)
