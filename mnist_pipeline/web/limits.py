"""Every bound the web server puts on what a client may send or make it do, in one place
(docs/web.md: each value and why). Light to import: the command reads it before the server's
own modules load.
"""

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    """The largest upload accepted (the page's canvas PNG is some 10 KB of 280x280 pixels), and
    how many requests are decoded and classified at once; the others wait their turn.

    Decoding is CPU work (Pillow lets go of the GIL for it): more pictures at once than CPUs read
    none faster, while each holds its decoded pixels (docs/web.md: what a burst costs).
    """

    max_bytes: int = 2_000_000
    max_pixels: int = 4_000_000
    decoders: int = os.cpu_count() or 1
    # TensorFlow Serving's predict: digits per request, and the JSON that holds that many.
    max_instances: int = 1000
    max_json_bytes: int = 20_000_000
