"""Collecting labelled drawings, under /api, with `mnist-web --collect DIR` only: POST
/api/collect takes the 28x28 picture the network was given (the `input` of /api/predict's
answer) and the digit it shows, and files it in the collection (data/collection.py).

The page sends back the `input` it was answered with rather than the drawing again: what is
filed is then exactly what the person saw read, named by the hash of the pixels they were shown,
with no second decoding. A collection is written, so besides the Host rule (app.py) a request
must come from the server's own page: its Origin must be this server's, and Sec-Fetch-Site, where
the browser sends it, same-origin. A form or script on another site gets a 403.
"""

import json
from pathlib import Path
from typing import Annotated

import numpy as np
from fastapi import APIRouter, Depends, HTTPException, Request

from mnist_pipeline.data import collection
from mnist_pipeline.data.dataset import IMAGE_SHAPE
from mnist_pipeline.plumbing.errors import PipelineError, one_line
from mnist_pipeline.web.service import Reader, read_body, reader

router = APIRouter()

EXPECTED = 'expected {"input": 28 rows of 28 pixels 0-255, "label": a digit 0-9}'


def collection_folder(request: Request) -> Path:
    """The folder drawings are collected in (`--collect DIR`); a 404 when collecting is off."""
    folder: Path | None = request.app.state.collection
    if folder is None:
        raise HTTPException(404, "collecting is off: start the server with --collect DIR")
    return folder


def same_origin(request: Request) -> None:
    """A 403 unless the request comes from this server's own page (Origin, Sec-Fetch-Site)."""
    own = f"{request.url.scheme}://{request.headers.get('host', '')}".lower()
    origin = request.headers.get("origin")
    if origin is None:
        raise HTTPException(403, f"no Origin header: only this server's page ({own}) may collect")
    if origin.lower() != own:
        raise HTTPException(403, f"Origin {origin!r} is not this server's ({own})")
    site = request.headers.get("sec-fetch-site", "same-origin")
    if site != "same-origin":
        raise HTTPException(403, f"Sec-Fetch-Site {site!r}: only this server's page may collect")


def labelled_pixels(body: bytes) -> tuple[np.ndarray, int]:
    """The picture and label of a collect request's JSON body; a 400 or 422 saying what is wrong."""
    try:
        document = json.loads(body)
    except (ValueError, RecursionError) as error:
        raise HTTPException(400, f"the request body is not JSON: {one_line(error)}") from None
    if not isinstance(document, dict) or set(document) != {"input", "label"}:
        raise HTTPException(422, EXPECTED)
    rows = document["input"]
    if not (
        isinstance(rows, list)
        and len(rows) == IMAGE_SHAPE[0]
        and all(isinstance(row, list) and len(row) == IMAGE_SHAPE[1] for row in rows)
        and all(is_pixel(value) for row in rows for value in row)
    ):
        raise HTTPException(422, f"input: {EXPECTED}")
    try:
        label = collection.check_label(document["label"])
    except PipelineError as error:
        raise HTTPException(422, str(error)) from None
    return np.array(rows, dtype=np.uint8), label


def is_pixel(value: object) -> bool:
    return type(value) is int and 0 <= value <= 255  # not a bool, nor 7.0


def save(folder: Path, pixels: np.ndarray, label: int) -> dict[str, object]:
    """File the drawing (in a worker thread: a slow disk does not hold the event loop)."""
    try:
        saved = collection.save_drawing(folder, pixels, label)
    # Past its bounds, or a folder that cannot be written (read-only, a full disk): the reason.
    except (collection.CollectionFull, collection.CollectionError) as error:
        raise HTTPException(507, str(error)) from None
    outcome = "added" if saved.added else "already collected"
    if saved.relabelled is not None:
        outcome = "relabelled"
    return {
        "outcome": outcome,
        "path": saved.path.relative_to(folder).as_posix(),
        "label": label,
        "relabelled_from": saved.relabelled,
    }


@router.post("/collect", dependencies=[Depends(same_origin)])
async def collect(
    request: Request,
    folder: Annotated[Path, Depends(collection_folder)],
    service: Annotated[Reader, Depends(reader)],
) -> dict[str, object]:
    content_type = request.headers.get("content-type", "")
    if content_type.split(";")[0].strip().lower() != "application/json":
        raise HTTPException(
            415, f"expected JSON (Content-Type application/json), got {content_type or 'none'}"
        )
    body = await read_body(request, service.limits.max_collect_bytes, "JSON")
    pixels, label = labelled_pixels(body)
    return await service.in_a_worker(save, folder, pixels, label)
