"""A TCP port on this machine to serve on: the one helper both servers (web page, S3) use."""

import os
import socket

from mnist_pipeline.plumbing.cli import integer_in
from mnist_pipeline.plumbing.errors import PipelineError

# argparse type: a TCP port (0: any free one).
port_number = integer_in(0, 65535, "a port number")


def listen(host: str, port: int) -> socket.socket:
    """A listening socket on host:port (port 0: any free one), or one line saying why not."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        sock = socket.create_server((host, port), family=family)
    except socket.gaierror as error:
        raise PipelineError(f"--host {host}: unknown host ({error})") from None
    except OSError as error:
        # os.strerror: create_server's own message repeats the address, as a Python tuple.
        reason = os.strerror(error.errno) if error.errno else str(error)
        raise PipelineError(f"cannot listen on {host}:{port}: {reason}") from None
    # Nagle's algorithm off for every connection accepted (they inherit it): asyncio turns it off
    # only on sockets made with proto IPPROTO_TCP, and create_server's have 0 (python/cpython
    # #148783, the same on macOS), so an answer written as headers, then body, waited for the
    # client's delayed acknowledgement, some 40 ms, on every reused connection.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def url_of(sock: socket.socket) -> str:
    """http://host:port/ of a listening socket, IPv6 addresses in brackets."""
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"
