"""Slow and greedy clients, on raw loopback sockets, against the real uvicorn server in a thread
with limits of a second (client_bounds.server_config): headers and bodies cut at their deadline
and not before, bodies held at once bounded, /api/health answered meanwhile."""

import contextlib
import json
import logging
import select
import socket
import threading
import time
from collections.abc import Iterator

import numpy as np
import pytest
import uvicorn

from mnist_pipeline.plumbing.net import listen
from mnist_pipeline.web import client_bounds
from mnist_pipeline.web.app import create_app
from mnist_pipeline.web.client_bounds import server_config
from mnist_pipeline.web.limits import Limits
from tests.support.glyphs import drawing, glyphs

LIMITS = Limits(header_timeout=1, body_timeout=1, max_bodies=2)
LATE = 1.0  # seconds past a deadline by which its cut must have come, on a busy machine
SEVEN = drawing(7, size=150, at=(140, 140))
HEALTH = b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


def upload(length: int) -> bytes:
    """A picture upload's request line and headers, for a body of `length` bytes."""
    return (
        b"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/png\r\n"
        b"Content-Length: %d\r\n\r\n" % length
    )


def uniform(pixels: np.ndarray) -> np.ndarray:  # a classifier with no opinion: no model to load
    return np.full((len(pixels), 10), 0.1, dtype=np.float32)


@contextlib.contextmanager
def running(limits: Limits) -> Iterator[tuple[str, int]]:
    """The server, with `limits`, listening on a free loopback port."""
    app = create_app([glyphs(uniform)], limits)
    server = uvicorn.Server(server_config(app, limits))
    with listen("127.0.0.1", 0) as sock:
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
            time.sleep(0.01)
        try:
            yield sock.getsockname()[:2]
        finally:
            server.should_exit = True
            thread.join(timeout=10)


@pytest.fixture
def address() -> Iterator[tuple[str, int]]:
    with running(LIMITS) as running_address:
        yield running_address


@contextlib.contextmanager
def connected(address: tuple[str, int]) -> Iterator[socket.socket]:
    with socket.create_connection(address, timeout=10) as connection:
        yield connection


def trickle(connection: socket.socket, data: bytes, every: float = 0.1) -> tuple[bytes, float]:
    """Send `data` a byte each `every` seconds until the server answers or closes: what it sent,
    to its close (or to the end of one answer, on a connection kept open), and when its answer
    began (time.monotonic)."""
    for byte in data:
        if select.select([connection], [], [], every)[0]:
            break
        connection.sendall(bytes([byte]))
    else:
        select.select([connection], [], [], 10)
    answered = time.monotonic()
    return read_answer(connection), answered


def read_answer(connection: socket.socket) -> bytes:
    """What the server sends, up to its close or to the end of one answer with a
    Content-Length (not past it: a kept-alive connection stays open)."""
    received = b""
    while chunk := connection.recv(65536):
        received += chunk
        head, _, body = received.partition(b"\r\n\r\n")
        lines = head.lower().split(b"\r\n")
        lengths = [int(line[15:]) for line in lines if line.startswith(b"content-length:")]
        if lengths and len(body) >= lengths[0]:
            break
    return received


def closed(connection: socket.socket) -> bool:
    """Whether the server has closed the connection (after all it sent was read)."""
    return select.select([connection], [], [], 1)[0] != [] and connection.recv(1) == b""


def status_and_error(answer: bytes) -> tuple[int, str]:
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)["error"]


def health_time(address: tuple[str, int]) -> float:
    """Seconds /api/health takes to answer on a new connection."""
    start = time.monotonic()
    with connected(address) as connection:
        connection.sendall(HEALTH)
        assert read_answer(connection).startswith(b"HTTP/1.1 200 ")
    return time.monotonic() - start


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


# --- headers -------------------------------------------------------------------------------------


def test_headers_slower_than_the_limit_are_a_408_at_it_and_not_before(address, caplog):
    start = time.monotonic()  # the server's clock starts later, once it accepts the connection
    with connected(address) as connection:
        answer, answered = trickle(connection, b"GET /api/health HTTP/1.1\r\nX-Slow: " + b"a" * 50)
        assert closed(connection)
    seconds = answered - start
    assert LIMITS.header_timeout <= seconds < LIMITS.header_timeout + LATE
    assert status_and_error(answer) == (408, "the headers did not arrive within 1 s")
    assert b"connection: close" in answer.lower()
    assert warnings(caplog) == [
        "127.0.0.1: a request's headers did not arrive within 1 s; answered 408"
    ]


def test_headers_within_the_limit_are_answered_however_slow(address):
    with connected(address) as connection:
        answer, _ = trickle(connection, HEALTH, every=0.6 * LIMITS.header_timeout / len(HEALTH))
        assert answer.startswith(b"HTTP/1.1 200 ")
        # Kept alive: the next request's headers get the whole time again, from its first byte.
        time.sleep(0.5 * LIMITS.header_timeout)
        answer, _ = trickle(connection, HEALTH, every=0.6 * LIMITS.header_timeout / len(HEALTH))
        assert answer.startswith(b"HTTP/1.1 200 ")


def test_a_connection_that_sends_nothing_is_closed_at_the_header_limit_without_a_word(
    address, caplog
):
    start = time.monotonic()
    with connected(address) as connection:
        select.select([connection], [], [], LIMITS.header_timeout + LATE)
        seconds = time.monotonic() - start
        assert connection.recv(1) == b""
    assert LIMITS.header_timeout <= seconds < LIMITS.header_timeout + LATE
    assert warnings(caplog) == []


# --- bodies --------------------------------------------------------------------------------------


def test_a_body_slower_than_the_limit_is_a_408_at_it_and_the_connection_closed(address, caplog):
    with connected(address) as connection:
        start = time.monotonic()  # the server's clock starts later, once the headers are read
        connection.sendall(upload(len(SEVEN)))
        answer, answered = trickle(connection, SEVEN)
        assert closed(connection)
    seconds = answered - start
    assert LIMITS.body_timeout <= seconds < LIMITS.body_timeout + LATE
    assert status_and_error(answer) == (408, "the body did not arrive within 1 s")
    assert b"connection: close" in answer.lower()
    assert warnings(caplog) == [
        "POST /api/predict from 127.0.0.1: the body did not arrive within 1 s; answered 408"
    ]


def test_a_body_within_the_limit_is_read_however_slow(address):
    pieces = np.array_split(np.frombuffer(SEVEN, np.uint8), 6)
    with connected(address) as connection:
        connection.sendall(upload(len(SEVEN)))
        for piece in pieces:
            time.sleep(0.6 * LIMITS.body_timeout / len(pieces))
            connection.sendall(piece.tobytes())
        assert read_answer(connection).startswith(b"HTTP/1.1 200 ")


def test_the_rest_of_a_body_answered_unread_gets_the_body_limit_from_the_answer(address, caplog):
    too_large = upload(10_000_000)  # refused from its Content-Length: 413 before any byte read
    with connected(address) as connection:
        connection.sendall(too_large)
        assert read_answer(connection).startswith(b"HTTP/1.1 413 ")
        # The rest in time is read and dropped, and the connection serves its next request.
        connection.sendall(bytes(10_000_000) + HEALTH)
        assert read_answer(connection).startswith(b"HTTP/1.1 200 ")
    with connected(address) as connection:
        start = time.monotonic()  # the server's clock starts later, once it has answered
        connection.sendall(too_large)
        assert read_answer(connection).startswith(b"HTTP/1.1 413 ")
        answer, answered = trickle(connection, bytes(100))
    seconds = answered - start
    assert answer == b""
    assert LIMITS.body_timeout <= seconds < LIMITS.body_timeout + LATE
    assert warnings(caplog) == [
        "127.0.0.1: the rest of a body answered unread did not arrive within 1 s; connection closed"
    ]


# --- bodies at once ------------------------------------------------------------------------------


def test_bodies_held_at_once_are_bounded_and_health_answered_meanwhile(caplog):
    limits = Limits(max_bodies=2)  # and a minute for each body, ten seconds for headers
    with running(limits) as address, contextlib.ExitStack() as stack:
        held = [stack.enter_context(connected(address)) for _ in range(limits.max_bodies)]
        slow_headers = [stack.enter_context(connected(address)) for _ in range(20)]
        for connection in held:
            connection.sendall(upload(len(SEVEN)) + SEVEN[:100])
        for connection in slow_headers:
            connection.sendall(b"GET /api/health HTTP/1.1\r\n")
        assert health_time(address) < 1  # and by then the held bodies have reached the app
        with connected(address) as one_more:
            one_more.sendall(upload(len(SEVEN)) + SEVEN)
            answer = read_answer(one_more)
        assert status_and_error(answer) == (
            503,
            "busy: 2 requests with a body already; retry in 1 s",
        )
        assert b"retry-after: 1\r\n" in answer.lower()
        # A body done with frees its place as soon as its answer comes.
        held[0].sendall(SEVEN[100:])
        assert read_answer(held[0]).startswith(b"HTTP/1.1 200 ")
        with connected(address) as next_one:
            next_one.sendall(upload(len(SEVEN)) + SEVEN)
            assert read_answer(next_one).startswith(b"HTTP/1.1 200 ")
    refusals = [line for line in warnings(caplog) if "503" in line]
    assert refusals == ["POST /api/predict from 127.0.0.1: 2 bodies held already; answered 503"]


# --- the defaults --------------------------------------------------------------------------------


def test_the_server_runs_with_each_default_limit():
    limits = Limits()
    config = server_config(create_app([glyphs(uniform)], limits), limits)
    assert config.http.func is client_bounds.RequestDeadlines
    assert config.http.keywords == {"header_timeout": 10, "body_timeout": 60}
    assert (config.timeout_keep_alive, config.h11_max_incomplete_event_size) == (5, 16_384)
    assert config.limit_concurrency == 256
