"""The FastAPI application, for one model or two side by side: the page's static files, its JSON
API under /api (page_api.py; collect_api.py, which files drawings with --collect) and TensorFlow
Serving's REST API under /v1 (tf_serving.py), both answered by one Reader (service.py). Every
error is JSON, `{"error": "<one line>"}`. Only requests whose Host header names this server are
answered (HostRule).
"""

import ipaddress
import logging
import re
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import Response

from mnist_pipeline.plumbing.errors import one_line
from mnist_pipeline.web import collect_api, page_api, tf_serving
from mnist_pipeline.web.client_bounds import BodyLimits
from mnist_pipeline.web.limits import Limits
from mnist_pipeline.web.served import ServedModel
from mnist_pipeline.web.service import Reader

STATIC_DIR = Path(__file__).parent / "static"
# The names of this machine's loopback interface, always answered.
LOOPBACK_NAMES = ("127.0.0.1", "[::1]", "localhost")
# A Host header: a name or an IPv4 address, or an IPv6 address in brackets; perhaps a port.
HOST_HEADER = re.compile(r"(?P<name>\[[^\]]*\]|[^:\[\]]*)(?::[0-9]*)?")

log = logging.getLogger(__name__)

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


def create_app(
    models: Sequence[ServedModel],
    limits: Limits = Limits(),
    host: str = "127.0.0.1",
    collection: Path | None = None,
) -> FastAPI:
    """The application around already loaded models (web.served.serve), for a server listening
    on `host` (`mnist-web --host`), whose names it answers to (HostRule); collecting drawings in
    the folder `collection` (`mnist-web --collect`), if one is given."""
    # No generated docs or schema: nothing but the page's own files and its API is served.
    app = FastAPI(title="MNIST digit reader", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.reader = Reader(models, limits)
    app.state.hosts = HostRule.serving(host)
    app.state.collection = collection
    app.add_exception_handler(StarletteHTTPException, error_as_json)
    app.add_exception_handler(ClientDisconnect, client_gone)
    # Added first, so innermost: a refused Host takes no body's place, and a 503 or 408 gets the
    # headers below. Added last, so outermost: every answer gets the headers, a refused Host's too.
    app.add_middleware(BodyLimits, max_bodies=limits.max_bodies, body_timeout=limits.body_timeout)
    app.middleware("http")(refuse_other_hosts)
    app.middleware("http")(add_security_headers)
    # Each API under its own mount, so that a wrong method on an API route is that route's 405,
    # naming the right ones; otherwise the page's mount at "/", which matches every path, would
    # answer it.
    api = APIRouter()
    for router in (page_api.router, collect_api.router):
        api.include_router(router)
    app.mount("/api", api, name="api")
    app.mount("/v1", tf_serving.router, name="tf-serving")
    app.mount("/", StaticFiles(directory=STATIC_DIR, html=True), name="page")
    return app


async def error_as_json(request: Request, error: StarletteHTTPException) -> Response:
    return JSONResponse({"error": error.detail}, error.status_code, headers=error.headers)


async def client_gone(request: Request, error: ClientDisconnect) -> Response:
    """Not a failure of the server's: one line for the log, and nobody left to answer."""
    client = request.client.host if request.client else "an unknown client"
    log.warning(
        "%s %s from %s: the connection closed before the whole request arrived",
        request.method,
        request.url.path,
        client,
    )
    return Response(status_code=400)


async def refuse_other_hosts(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    hosts: HostRule = request.app.state.hosts
    header = request.headers.get("host", "")
    if not hosts.allows(header):
        return JSONResponse({"error": hosts.refusal(header)}, 400)
    return await call_next(request)


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
