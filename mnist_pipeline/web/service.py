"""The reader service behind every route: the served models, a lock per model, and the bounds
on how many pictures are read at once (Limits). One per application (app.state.reader)."""

import io
import threading
from collections.abc import Callable, Sequence
from typing import TypeVar

import anyio
import numpy as np
from fastapi import HTTPException, Request

from mnist_pipeline.data.preprocessing import normalize_pixels
from mnist_pipeline.plumbing.errors import PipelineError
from mnist_pipeline.reading.classifiers import top_two
from mnist_pipeline.reading.imaging import ImageTooLarge, read_digit
from mnist_pipeline.web import memory
from mnist_pipeline.web.limits import Limits
from mnist_pipeline.web.served import ServedModel

# How an upload is named in readings and errors ("upload: blank image: no digit found").
UPLOAD_NAME = "upload"

Result = TypeVar("Result")


class Reader:
    """Reads digits with the served models, for the page's API and TensorFlow Serving's."""

    def __init__(self, models: Sequence[ServedModel], limits: Limits) -> None:
        self.models, self.limits = models, limits
        self.decoders = anyio.CapacityLimiter(limits.decoders)
        # A model is not promised to be safe to call from several threads at once (LiteRT's
        # interpreter holds its tensors): requests are read in parallel, each model called by one.
        self.locks = {id(model): threading.Lock() for model in models}
        self.in_flight = 0  # requests being read or waiting for a decoder

    def classify(self, model: ServedModel, pixels: np.ndarray) -> np.ndarray:
        """Normalized pixels (N, 784) -> probabilities (N, 10), one call of a model at a time."""
        with self.locks[id(model)]:
            return model.classifier(pixels)

    def read_upload(self, body: bytes) -> dict[str, object]:
        """An uploaded picture -> the 28x28 digit the networks saw (`input`) and each model's
        reading; a 413 for a picture over limits.max_pixels, a 422 for one that holds no digit."""
        try:
            digit = read_digit(io.BytesIO(body), UPLOAD_NAME, self.limits.max_pixels)
        except ImageTooLarge as error:
            raise HTTPException(413, f"image too large: {error.reason}") from None
        except PipelineError as error:
            raise HTTPException(422, str(error)) from None
        pixels = normalize_pixels(digit[np.newaxis])
        readings = []
        for model in self.models:
            probabilities = self.classify(model, pixels)[0]
            readings.append(
                {
                    "model": model.describe(),
                    **top_two(probabilities).as_dict(),
                    "probabilities": [round(float(p), 6) for p in probabilities],
                }
            )
        return {"input": digit.tolist(), "readings": readings}

    async def in_a_worker(self, work: Callable[..., Result], *args: object) -> Result:
        """Run `work` in one of `decoders` threads: a burst waits here, holding only its
        requests; once none is left, the memory it used goes back to the system."""
        self.in_flight += 1
        try:
            return await anyio.to_thread.run_sync(work, *args, limiter=self.decoders)
        finally:
            self.in_flight -= 1
            if not self.in_flight:
                memory.give_back_free_memory()


def reader(request: Request) -> Reader:
    """The application's Reader, for a route to depend on (FastAPI's Depends)."""
    return request.app.state.reader


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
