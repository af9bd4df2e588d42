"""The port helper both servers use: argparse's port type and the listening socket."""

import argparse
import socket

import pytest

from mnist_pipeline.plumbing.errors import PipelineError
from mnist_pipeline.plumbing.net import listen, port_number, url_of


@pytest.mark.parametrize("text", ["0", "8000", "65535"])
def test_port_numbers_from_0_to_65535_are_taken(text):
    assert port_number(text) == int(text)


@pytest.mark.parametrize("text", ["-1", "65536", "80.5", "http", ""])
def test_anything_else_is_refused_naming_the_range(text):
    with pytest.raises(argparse.ArgumentTypeError, match=f"0-65535, got {text!r}"):
        port_number(text)


def test_port_0_listens_on_a_free_port_of_loopback():
    with listen("127.0.0.1", 0) as sock:
        port = sock.getsockname()[1]
        assert port > 0 and url_of(sock) == f"http://127.0.0.1:{port}/"
        socket.create_connection(("127.0.0.1", port), timeout=5).close()


def test_a_taken_port_is_one_line_naming_the_address():
    with listen("127.0.0.1", 0) as taken:
        port = taken.getsockname()[1]
        with pytest.raises(PipelineError) as error:
            listen("127.0.0.1", port)
    assert str(error.value) == f"cannot listen on 127.0.0.1:{port}: Address already in use"


def test_an_unknown_host_is_one_line():
    with pytest.raises(PipelineError, match=r"^--host no-such-host\.invalid: unknown host"):
        listen("no-such-host.invalid", 0)


def test_the_connections_it_accepts_send_small_writes_at_once():
    # Nagle's algorithm off: a response written as headers, then body, waited for the client's
    # delayed acknowledgement of the headers, some 40 ms, on every reused connection.
    with listen("127.0.0.1", 0) as sock, socket.create_connection(sock.getsockname(), timeout=5):
        accepted, _ = sock.accept()
        with accepted:
            assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
