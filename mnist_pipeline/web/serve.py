"""Serve the page to draw a digit on, for the trained model, on this machine only by default.

Open the printed address in a browser, draw a digit, and see what the network reads after each
stroke: the digit, the probability of each of the ten, and the 28x28 picture it was given.
"""

import argparse
import logging
import os
import socket

import numpy as np

from mnist_pipeline import cli
from mnist_pipeline.errors import PipelineError
from mnist_pipeline.files import check_model_file
from mnist_pipeline.imaging import FIELD_SIZE
from mnist_pipeline.predict import MISSING_MODEL_HINT, add_model_option

PROG = "mnist-web"
DEFAULT_HOST = "127.0.0.1"  # loopback: the page is for the person at this machine
DEFAULT_PORT = 8000

log = logging.getLogger(__name__)


def port_number(text: str) -> int:
    """argparse type: a TCP port, 0-65535."""
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port number 0-65535, got {text!r}")
    return port


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port (port 0: any free one), or one line saying why not."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        return socket.create_server((host, port), family=family)
    except socket.gaierror as error:
        raise PipelineError(f"--host {host}: unknown host ({error})") from None
    except OSError as error:
        # os.strerror: create_server's own message repeats the address, as a Python tuple.
        reason = os.strerror(error.errno) if error.errno else str(error)
        raise PipelineError(f"cannot listen on {host}:{port}: {reason}") from None


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def main(args: argparse.Namespace) -> int:
    # The cheap checks first: a missing model or a taken port is told before TensorFlow loads.
    check_model_file(args.model, hint=MISSING_MODEL_HINT)
    sock = bind(args.host, args.port)

    import uvicorn

    from mnist_pipeline.predict import classify, load_classifier
    from mnist_pipeline.web.app import create_app

    model = load_classifier(args.model)  # once, for every request
    # One classification up front, so the first drawing does not wait for TensorFlow's tracing.
    classify(model, [np.zeros((FIELD_SIZE, FIELD_SIZE), dtype=np.uint8)])
    app = create_app(model, model_name=str(args.model))
    # log_config=None: uvicorn's messages go through this command's logging setup (cli.run).
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, server_header=False))
    log.info("serving %s for %s; Ctrl-C stops", url_of(sock), args.model)
    server.run(sockets=[sock])
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__)
    parser.add_argument(
        "--host",
        default=DEFAULT_HOST,
        help=f"address to listen on (default: {DEFAULT_HOST}, this machine only; "
        "0.0.0.0 opens it to the network)",
    )
    parser.add_argument(
        "--port",
        type=port_number,
        default=DEFAULT_PORT,
        help=f"port to listen on (default: {DEFAULT_PORT}; 0: any free port)",
    )
    add_model_option(parser)
    return parser


def console() -> None:
    """The `mnist-web` command."""
    cli.run(main, build_parser(), skip_teardown=True)
