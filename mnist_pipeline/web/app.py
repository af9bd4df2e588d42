"""The FastAPI application: the page's static files and a JSON API around predict's own code,
for one model or two side by side.

POST /api/predict takes a picture (the page sends its canvas as a PNG) and answers with the 28x28
picture the network saw (`input`) and each model's reading (`readings`: `predict --json`'s fields,
the ten probabilities, and the model). GET /api/health says the server is up and names its models.
TensorFlow Serving's REST API is served under /v1 (tf_serving.py). Every error is JSON,
`{"error": "<one line>"}`. Only requests whose Host header names this server are answered
(HostRule).
"""

import io
import ipaddress
import logging
import re
import threading
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import anyio
import numpy as np
from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from PIL import Image
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import Response

from mnist_pipeline.data.preprocessing import normalize_pixels
from mnist_pipeline.plumbing.errors import PipelineError, one_line
from mnist_pipeline.reading.classifiers import top_two
from mnist_pipeline.reading.imaging import DECODE_ERRORS, read_digit
from mnist_pipeline.web import memory, tf_serving
from mnist_pipeline.web.client_bounds import BodyLimits
from mnist_pipeline.web.limits import Limits
from mnist_pipeline.web.served import ServedModel

STATIC_DIR = Path(__file__).parent / "static"
# How an upload is named in readings and errors ("upload: blank image: no digit found").
UPLOAD_NAME = "upload"
# The names of this machine's loopback interface, always answered.
LOOPBACK_NAMES = ("127.0.0.1", "[::1]", "localhost")
# A Host header: a name or an IPv4 address, or an IPv6 address in brackets; perhaps a port.
HOST_HEADER = re.compile(r"(?P<name>\[[^\]]*\]|[^:\[\]]*)(?::[0-9]*)?")

log = logging.getLogger(__name__)

Result = TypeVar("Result")

# Nothing is fetched from elsewhere: the browser refuses anything but this server's own files.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


@dataclass(frozen=True)
class HostRule:
    """Which Host headers are answered: the names of the address served, so that a web page
    elsewhere cannot read the API through a name of its own resolved to this machine (DNS
    rebinding). Any port is answered: a tunnel (`ssh -L 9000:localhost:8000`) changes the port,
    not the name.

    Served on every interface (0.0.0.0, ::), other machines name the server by an address of
    this machine, which no DNS answer can stand for: every IP address is answered then.
    """

    names: frozenset[str]
    any_address: bool = False

    @classmethod
    def serving(cls, host: str) -> "HostRule":
        """The rule for a server listening on `host` (`--host`: a name or an address)."""
        try:
            address = ipaddress.ip_address(host)
        except ValueError:  # a name
            return cls(frozenset({*LOOPBACK_NAMES, host.lower()}))
        name = f"[{address}]" if address.version == 6 else str(address)
        return cls(frozenset({*LOOPBACK_NAMES, name}), address.is_unspecified)

    def allows(self, header: str) -> bool:
        """Whether a request with this Host header is answered."""
        if not (match := HOST_HEADER.fullmatch(header)):
            return False
        name = match["name"].lower()
        return name in self.names or (self.any_address and is_ip_address(name))

    def refusal(self, header: str) -> str:
        """Why a request with this Host header is not answered, in one line."""
        names = ", ".join(sorted(self.names)) + (", any IP address" if self.any_address else "")
        return f"Host {header!r} is not a name of this server (it answers to {names})"


def is_ip_address(name: str) -> bool:
    """Whether a Host header's name is an IPv4 address, or an IPv6 one in brackets."""
    try:
        address = ipaddress.ip_address(name.removeprefix("[").removesuffix("]"))
    except ValueError:
        return False
    return name.startswith("[") == (address.version == 6)


def check_pixels(body: bytes, max_pixels: int) -> None:
    """Refuse an image with too many pixels from its header alone, before anything is decoded."""
    try:
        with Image.open(io.BytesIO(body)) as image:
            width, height = image.size
    except Image.DecompressionBombError as error:
        raise HTTPException(413, f"image too large: {error}") from None
    except (Image.UnidentifiedImageError, *DECODE_ERRORS):
        return  # not a readable image at all: read_digit says so in its own words
    if width * height > max_pixels:
        raise HTTPException(
            413, f"image too large: {width}x{height} pixels, the limit is {max_pixels:,}"
        )


def create_app(
    models: Sequence[ServedModel],
    limits: Limits = Limits(),
    host: str = "127.0.0.1",
) -> FastAPI:
    """The application around already loaded models (web.served.serve), for a server listening
    on `host` (`mnist-web --host`), whose names it answers to (HostRule)."""
    # No generated docs or schema: nothing but the page's own files and its API is served.
    app = FastAPI(title="MNIST digit reader", docs_url=None, redoc_url=None, openapi_url=None)
    hosts = HostRule.serving(host)
    decoders = anyio.CapacityLimiter(limits.decoders)
    # Under its own mount, a wrong method on an API route is that route's 405, naming the right
    # ones; otherwise the page's mount at "/", which matches every path, would answer it.
    api = APIRouter()
    # A model is not promised to be safe to call from several threads at once (LiteRT's
    # interpreter holds its tensors): requests are read in parallel, each model called by one.
    locks = {id(model): threading.Lock() for model in models}
    in_flight = 0  # requests being read or waiting for a decoder

    def classify_with(model: ServedModel, pixels: np.ndarray) -> np.ndarray:
        with locks[id(model)]:
            return model.classifier(pixels)

    def read_upload(body: bytes) -> dict[str, object]:
        check_pixels(body, limits.max_pixels)
        try:
            digit = read_digit(io.BytesIO(body), name=UPLOAD_NAME)
        except PipelineError as error:
            raise HTTPException(422, str(error)) from None
        pixels = normalize_pixels(digit[np.newaxis])
        readings = []
        for model in models:
            probabilities = classify_with(model, pixels)[0]
            readings.append(
                {
                    "model": model.describe(),
                    **top_two(probabilities).as_dict(),
                    "probabilities": [round(float(p), 6) for p in probabilities],
                }
            )
        return {"input": digit.tolist(), "readings": readings}

    async def in_a_worker(work: Callable[..., Result], *args: object) -> Result:
        """Run `work` in one of `decoders` threads: a burst waits here, holding only its
        requests; once none is left, the memory it used goes back to the system."""
        nonlocal in_flight
        in_flight += 1
        try:
            return await anyio.to_thread.run_sync(work, *args, limiter=decoders)
        finally:
            in_flight -= 1
            if not in_flight:
                memory.give_back_free_memory()

    @app.exception_handler(StarletteHTTPException)
    async def error_as_json(request: Request, error: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"error": error.detail}, error.status_code, headers=error.headers)

    @app.exception_handler(ClientDisconnect)
    async def client_gone(request: Request, error: ClientDisconnect) -> Response:
        # Not a failure of the server's: one line for the log, and nobody left to answer.
        client = request.client.host if request.client else "an unknown client"
        log.warning(
            "%s %s from %s: the connection closed before the whole request arrived",
            request.method,
            request.url.path,
            client,
        )
        return Response(status_code=400)

    # Added first, so innermost: a refused Host takes no body's place, and a 503 or 408 gets the
    # headers below.
    app.add_middleware(BodyLimits, max_bodies=limits.max_bodies, body_timeout=limits.body_timeout)

    @app.middleware("http")
    async def refuse_other_hosts(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        header = request.headers.get("host", "")
        if not hosts.allows(header):
            return JSONResponse({"error": hosts.refusal(header)}, 400)
        return await call_next(request)

    # Added last, so outermost: every answer gets the headers, a refused Host's too.
    @app.middleware("http")
    async def add_security_headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        try:
            response = await call_next(request)
        # Caught here rather than by an exception handler for Exception, which Starlette's
        # ServerErrorMiddleware calls and then re-raises, for uvicorn to log a second traceback.
        except Exception as error:
            response = failure(request, error)
        response.headers.update(SECURITY_HEADERS)
        return response

    @api.api_route("/health", methods=["GET", "HEAD"])
    async def health() -> dict[str, object]:
        return {"status": "ok", "models": [model.describe() for model in models]}

    @api.post("/predict")
    async def predict_upload(request: Request) -> dict[str, object]:
        content_type = request.headers.get("content-type", "")
        if not content_type.split(";")[0].strip().lower().startswith("image/"):
            raise HTTPException(
                415, f"expected an image (Content-Type image/png), got {content_type or 'none'}"
            )
        body = await read_body(request, limits.max_bytes, "image")
        if not body:
            raise HTTPException(400, "empty request: send the drawing as a PNG image")
        return await in_a_worker(read_upload, body)

    app.mount("/api", api, name="api")
    serving_api = tf_serving.router(
        models, in_a_worker, classify_with, read_body, limits.max_json_bytes, limits.max_instances
    )
    app.mount("/v1", serving_api, name="tf-serving")
    app.mount("/", StaticFiles(directory=STATIC_DIR, html=True), name="page")
    return app


def failure(request: Request, error: Exception) -> JSONResponse:
    """A bug, not bad input: one log line naming the request by an id that its answer gives too
    (the traceback only with --verbose), and a JSON 500 like every error."""
    request_id = uuid.uuid4().hex[:12]
    log.error(
        "%s %s failed (request %s): %s",
        request.method,
        request.url.path,
        request_id,
        one_line(error),
    )
    log.debug("request %s", request_id, exc_info=error)
    return JSONResponse(
        {"error": f"internal error (request {request_id})"},
        500,
        headers={"X-Request-Id": request_id},
    )


async def read_body(request: Request, max_bytes: int, what: str) -> bytes:
    """The request's body, or a 413 once it is over `max_bytes` (`what`: an image, JSON), told
    by its Content-Length or, without one, while it is read in chunks."""
    too_large = HTTPException(413, f"{what} too large: over {max_bytes:,} bytes")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise too_large
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_bytes:
            raise too_large
    return bytes(body)
