"""Serve the page to draw a digit on, for the trained model, on this machine only by default.

Open the printed address in a browser, draw a digit, and see what the network reads after each
stroke: the digit, the probability of each of the ten, and the 28x28 picture it was given. Give
--model twice to see two models' readings side by side; with --collect DIR, tell the page the
right digit and it files the drawing in DIR. The same server answers TensorFlow
Serving's REST API under /v1 (docs/web.md).
"""

import argparse
import ipaddress
import logging
import socket
from pathlib import Path

import numpy as np

from mnist_pipeline.data import collection
from mnist_pipeline.data.preprocessing import INPUT_SIZE
from mnist_pipeline.plumbing import cli, paths
from mnist_pipeline.plumbing.errors import PipelineError
from mnist_pipeline.plumbing.net import listen, port_number, url_of
from mnist_pipeline.reading import registry
from mnist_pipeline.web import memory
from mnist_pipeline.web.limits import Limits

PROG = "mnist-web"
DEFAULT_HOST = "127.0.0.1"  # loopback: the page is for the person at this machine
DEFAULT_PORT = 8000
MAX_MODELS = 2  # side by side on the page

log = logging.getLogger(__name__)


def model_references(given: list[str] | None) -> list[str]:
    """The models --model names (given once or twice), or the pipeline's by default."""
    if given and len(given) > MAX_MODELS:
        raise PipelineError(f"--model: at most {MAX_MODELS} models side by side, got {len(given)}")
    return given or [str(paths.SERVING_MODEL_FILE)]


def main(args: argparse.Namespace) -> int:
    references = model_references(args.model)
    # The cheap checks first: a missing model or a taken port is told before any model loads.
    sources = [registry.resolve(reference) for reference in references]
    if len({source.md5 for source in sources}) < len(sources):
        raise PipelineError("--model: the same model twice; name two different ones")
    if args.collect is not None:
        check_collection_folder(args.collect)
    sock = listen(args.host, args.port)
    warn_if_reachable(sock, args.host)
    memory.use_one_arena()  # before any thread allocates

    import uvicorn

    from mnist_pipeline.web.app import create_app
    from mnist_pipeline.web.client_bounds import server_config
    from mnist_pipeline.web.served import serve

    models = [serve(source) for source in sources]  # loaded once, for every request
    # One classification up front, so the first drawing does not wait for the models' set-up.
    for model in models:
        model.classifier(np.zeros((1, INPUT_SIZE), dtype=np.float32))
    limits = Limits()
    app = create_app(models, limits, host=args.host, collection=args.collect)
    # uvicorn's line per request, and its warnings (a malformed request); its lines about its
    # start and stop (uvicorn.error's INFO) only with --verbose: ours say when it serves.
    logging.getLogger("uvicorn").setLevel(logging.DEBUG if args.verbose else logging.INFO)
    logging.getLogger("uvicorn.error").setLevel(logging.DEBUG if args.verbose else logging.WARNING)
    server = uvicorn.Server(server_config(app, limits))
    labels = " and ".join(model.label for model in models)
    log.info("serving %s for %s; Ctrl-C stops", url_of(sock), labels)
    if args.collect is not None:
        log.info("collecting labelled drawings in %s", args.collect)
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        # Ctrl-C is how the server stops: status 0, so `make serve` does not call it an error.
        # uvicorn raises the signal again once it has shut down (Kludex/uvicorn#1600, 0.29).
        log.info("stopped")
    return 0


def check_collection_folder(folder: Path) -> None:
    """Refuse a --collect folder that cannot be a collection: a file, or one holding a stray
    file (it would be refused at the first drawing, or break the pipeline's reading of it)."""
    if folder.exists() and not folder.is_dir():
        raise PipelineError(f"--collect {folder}: not a folder")
    collection.collection_entries(folder)


def warn_if_reachable(sock: socket.socket, host: str) -> None:
    """One warning line if `sock` listens on an address other machines can reach (`host`: as
    given with --host): the page and its API ask nobody for a password."""
    if not ipaddress.ip_address(sock.getsockname()[0]).is_loopback:
        log.warning(
            "--host %s: the page is reachable from other machines, with no authentication", host
        )


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
    cli.add_model_option(parser, repeatable=True)
    parser.add_argument(
        "--collect",
        type=Path,
        metavar="DIR",
        help="let the page file each drawing with its right digit in DIR (a folder per digit; "
        "docs/web.md#collecting-drawings); off by default",
    )
    return parser


def console() -> None:
    """The `mnist-web` command."""
    cli.run(main, build_parser(), skip_teardown=True, model_hint=cli.MISSING_MODEL_HINT)
