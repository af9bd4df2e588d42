"""TensorFlow's import, which takes seconds: made faster for whatever imports it (the train
stage, a reader of a .keras model). A speed device measured by `python -m benchmarks.speedups`."""

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def importing_tensorflow() -> Iterator[None]:
    """Import TensorFlow inside this block: the garbage collector pauses while its many
    long-lived objects are made, and freezes them afterwards so no later collection scans them."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if was_enabled:
            gc.enable()
