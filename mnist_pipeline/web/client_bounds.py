"""What uvicorn leaves unbounded of what a client holds: how long its request may take to
arrive, and how many bodies are held at once.

uvicorn times only an idle connection between requests (`timeout_keep_alive`), and any byte
received stops that clock: a request line, headers or body trickled a byte at a time hold their
connection, and a body its memory, for ever (Kludex/uvicorn#157, "Further timeouts and resource
limiting": --timeout-request-start, some 10 s, and --timeout-request-complete, some 60 s, proposed
in 2018 and never built). Headers never reach the ASGI app, so the connection's protocol keeps
their deadline (RequestDeadlines); the app keeps a body's, and the bound on bodies at once
(BodyLimits), and answers them as it answers every error. The values: web/limits.py.
"""

import asyncio
import functools
import json
import logging

import anyio
import h11
import uvicorn
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from mnist_pipeline.web.limits import Limits

RETRY_AFTER = "1"  # seconds, for a request refused while too many bodies are held

log = logging.getLogger(__name__)


def server_config(app: ASGIApp, limits: Limits) -> uvicorn.Config:
    """uvicorn's settings for serving `app` within `limits`: its own bounds, and the deadlines
    it lacks."""
    return uvicorn.Config(
        app,
        # h11's protocol, the one uvicorn picks without httptools, with the deadlines added.
        http=functools.partial(
            RequestDeadlines,
            header_timeout=limits.header_timeout,
            body_timeout=limits.body_timeout,
        ),
        h11_max_incomplete_event_size=limits.max_header_bytes,
        timeout_keep_alive=limits.keep_alive_timeout,
        limit_concurrency=limits.max_connections,
        # None: uvicorn's messages go through the command's logging setup (cli.run), its INFO
        # lines too (the start, a line per request), as a web server's log has them.
        log_config=None,
        server_header=False,
    )


class RequestDeadlines(H11Protocol):
    """uvicorn's h11 protocol with a deadline on each wait for the client that it leaves open:

    - a request line and headers, `header_timeout` from the connection's opening (or from the
      request's first byte on a kept-alive one): then 408 and the connection closed, or closed
      without a word if nothing at all came, as uvicorn closes an idle connection;
    - the rest of a body answered unread (413 from its Content-Length, 503, 405), which uvicorn
      reads and drops so that the answer is not lost to a reset: `body_timeout` from the
      answer, then the connection closed.
    """

    def __init__(
        self, *args: object, header_timeout: float, body_timeout: float, **kwargs: object
    ) -> None:
        super().__init__(*args, **kwargs)
        self.timeouts = {"headers": header_timeout, "body": body_timeout}
        self.awaiting: str | None = None  # what the client must send by self.deadline
        self.deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:
        super().connection_made(transport)
        self.watch()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self.watch()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self.watch()

    def connection_lost(self, exc: Exception | None) -> None:
        self.expect(None)
        super().connection_lost(exc)

    def watch(self) -> None:
        """Set the deadline for what the connection now waits for from the client."""
        theirs = self.conn.their_state
        if self.transport.is_closing():
            self.expect(None)
        # A request begun, or a wait for one that uvicorn does not time (a new connection, or
        # one whose unread body has just been dropped).
        elif theirs is h11.IDLE and (
            self.conn.trailing_data[0] or self.timeout_keep_alive_task is None
        ):
            self.expect("headers")
        elif theirs is h11.SEND_BODY and self.conn.our_state is h11.DONE:
            self.expect("body")
        else:  # idle between requests (timeout_keep_alive), or a request with the app (BodyLimits)
            self.expect(None)

    def expect(self, what: str | None) -> None:
        """A deadline for `what` ("headers", "body", None: none), kept if it is for that already:
        a trickle of bytes does not push it back."""
        if what == self.awaiting:
            return
        if self.deadline is not None:
            self.deadline.cancel()
        self.awaiting = what
        self.deadline = None
        if what is not None:
            self.deadline = self.loop.call_later(self.timeouts[what], self.too_slow)

    def too_slow(self) -> None:
        seconds = self.timeouts[self.awaiting]
        client = self.client[0] if self.client else "an unknown client"
        if self.awaiting == "body":
            log.warning(
                "%s: the rest of a body answered unread did not arrive within %g s; "
                "connection closed",
                client,
                seconds,
            )
        elif self.conn.trailing_data[0]:  # part of a request, not an idle connection
            log.warning(
                "%s: a request's headers did not arrive within %g s; answered 408", client, seconds
            )
            body = json.dumps({"error": f"the headers did not arrive within {seconds:g} s"})
            headers = [
                ("content-type", "application/json"),
                ("content-length", str(len(body))),
                ("connection", "close"),
            ]
            self.transport.write(
                self.conn.send(h11.Response(status_code=408, headers=headers))
                + self.conn.send(h11.Data(data=body.encode()))
                + self.conn.send(h11.EndOfMessage())
            )
        self.transport.close()


def carries_body(scope: Scope) -> bool:
    """Whether an ASGI connection is an HTTP request with a body, by its headers."""
    if scope["type"] != "http":
        return False
    headers = Headers(scope=scope)
    return headers.get("content-length", "0") != "0" or "transfer-encoding" in headers


class BodyLimits:
    """ASGI middleware for requests with a body: at most `max_bodies` at once, from their
    headers to their answer (past it, 503 with Retry-After, before any of the body is read),
    each body whole within `body_timeout` of its headers (else 408, and the connection closed).
    Requests without a body pass untouched: /api/health answers whatever the bodies do."""

    def __init__(self, app: ASGIApp, max_bodies: int, body_timeout: float) -> None:
        self.app = app
        self.max_bodies = max_bodies
        self.body_timeout = body_timeout
        self.held = 0  # requests holding a body now (one event loop: no lock)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not carries_body(scope):
            await self.app(scope, receive, send)
            return
        host = scope["client"][0] if scope.get("client") else "an unknown client"
        request = f"{scope['method']} {scope['path']} from {host}"
        if self.held >= self.max_bodies:
            log.warning("%s: %d bodies held already; answered 503", request, self.held)
            busy = f"busy: {self.held} requests with a body already; retry in {RETRY_AFTER} s"
            refusal = JSONResponse({"error": busy}, 503, headers={"Retry-After": RETRY_AFTER})
            await refusal(scope, receive, send)
            return
        self.held += 1
        holding = True

        def release() -> None:  # once: at the answer, or when the app ends without one
            nonlocal holding
            if holding:
                holding = False
                self.held -= 1

        async def send_releasing(message: Message) -> None:
            # The body is done with once its answer starts: a client that reads the answer can
            # send its next body at once.
            if message["type"] == "http.response.start":
                release()
            await send(message)

        try:
            await self.app(scope, self.in_time(receive, request), send_releasing)
        finally:
            release()

    def in_time(self, receive: Receive, request: str) -> Receive:
        """`receive`, raising a 408 (which closes the connection) once the body has not arrived
        whole within `body_timeout` of now."""
        deadline = anyio.current_time() + self.body_timeout
        whole = False

        async def receive_in_time() -> Message:
            nonlocal whole
            if whole:  # only a disconnect is left to wait for, as long as the answer takes
                return await receive()
            try:
                with anyio.fail_after(deadline - anyio.current_time()):
                    message = await receive()
            except TimeoutError:
                log.warning(
                    "%s: the body did not arrive within %g s; answered 408",
                    request,
                    self.body_timeout,
                )
                raise HTTPException(
                    408,
                    f"the body did not arrive within {self.body_timeout:g} s",
                    headers={"Connection": "close"},
                ) from None
            whole = not message.get("more_body", False)
            return message

        return receive_in_time
