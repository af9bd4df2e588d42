"""Every bound the web server puts on what a client may send or make it do, in one place
(docs/web.md: each value and why). Light to import: the command reads it before the server's
own modules load.
"""

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    """The largest upload accepted (the page's canvas PNG is some 10 KB of 280x280 pixels), and
    how many requests are decoded and classified at once; the others wait their turn. Then what
    a connection may hold of the server: how long its request may take to arrive, how many
    bodies are held at once (web/client_bounds.py).

    Decoding is CPU work (Pillow lets go of the GIL for it): more pictures at once than CPUs read
    none faster, while each holds its decoded pixels (docs/web.md: what a burst costs).
    """

    max_bytes: int = 2_000_000
    max_pixels: int = 4_000_000
    decoders: int = os.cpu_count() or 1
    # TensorFlow Serving's predict: digits per request, and the JSON that holds that many.
    max_instances: int = 1000
    max_json_bytes: int = 20_000_000
    # A collected drawing (POST /api/collect): 28 rows of 28 pixels as JSON, some 3 KB from the
    # page, room for spaces.
    max_collect_bytes: int = 16_384
    # A request line and its headers, in bytes: h11's own default, said here; a browser's are
    # under 2 KB. Over it, uvicorn answers 400.
    max_header_bytes: int = 16_384
    # Seconds for a request line and headers to arrive, from the connection's opening or the
    # request's first byte: uvicorn has no such limit (Kludex/uvicorn#157 proposed some 10 s).
    header_timeout: float = 10
    # Seconds for a body to arrive whole, from its headers: 20 MB of JSON at 2.7 Mbit/s, the
    # page's 10 KB PNG at 1.4 kbit/s (Kludex/uvicorn#157 proposed some 60 s).
    body_timeout: float = 60
    # Seconds an idle connection waits for its next request: uvicorn's own default, said here.
    keep_alive_timeout: int = 5
    # Requests holding a body at once, from their headers to their answer (being read, or
    # waiting for a decoder): at most 16 x 20 MB of JSON. Past it, 503 with Retry-After.
    max_bodies: int = 16
    # Connections and requests at once (uvicorn's limit_concurrency; past it, uvicorn's 503):
    # far above a browser's 6 per server, far below the 1,024 files a process may often open.
    max_connections: int = 256
