"""TensorFlow Serving's REST API, for the clients people already have for it.

    GET  /v1/models/NAME[/versions/VERSION]           the model's status
    POST /v1/models/NAME[/versions/VERSION]:predict   {"instances": [...]} -> {"predictions": ...}

Each instance is one digit: 784 normalized pixels (value / 255, in [0, 1]) or 28 rows of 28; each
prediction the ten digit probabilities. Errors are TensorFlow Serving's: `{"error": "..."}`, 400
for a bad request, 404 for a model or version not served.
"""

import json
from collections.abc import Awaitable, Callable, Sequence

import numpy as np
from fastapi import APIRouter, HTTPException, Request

from mnist_pipeline.dataset import IMAGE_SHAPE
from mnist_pipeline.preprocessing import INPUT_SIZE
from mnist_pipeline.web.served import ServedModel

# What numpy made of values that are not numbers, by its dtype's kind.
VALUE_KINDS = {"b": "true/false", "U": "text", "O": "mixed"}

# Runs work in one of the server's worker threads, as many at once as it reads pictures.
InAWorker = Callable[..., Awaitable[object]]
# Runs a model on normalized pixels (N, 784), one call of a model at a time.
Classify = Callable[[ServedModel, np.ndarray], np.ndarray]
ReadBody = Callable[[Request, int, str], Awaitable[bytes]]


def find(models: Sequence[ServedModel], name: str, version: str | None) -> ServedModel:
    """The model served under `name` (and `version`: else the first of that name), or a 404
    worded as TensorFlow Serving words it."""
    for model in models:
        if model.name == name and version in (None, model.version):
            return model
    wanted = f"Specific({name}, {version})" if version else f"Latest({name})"
    raise HTTPException(404, f"Servable not found for request: {wanted}")


def status(model: ServedModel) -> dict[str, object]:
    return {
        "version": model.version,
        "state": "AVAILABLE",
        "status": {"error_code": "OK", "error_message": ""},
    }


def instances_as_pixels(body: bytes, max_instances: int) -> np.ndarray:
    """The request's instances as float32 (N, 784), or a 400 saying what is wrong with them."""
    try:
        document = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise HTTPException(400, f"the request body is not JSON: {error}") from None
    if not isinstance(document, dict) or not isinstance(document.get("instances"), list):
        raise HTTPException(
            400, 'expected a JSON object {"instances": [...]}, one digit per instance'
        )
    instances = document["instances"]
    if not 1 <= len(instances) <= max_instances:
        raise HTTPException(
            400, f"expected 1 to {max_instances} instances per request, got {len(instances)}"
        )
    try:
        pixels = np.asarray(instances)
    except ValueError:  # lists of different lengths
        pixels = np.empty(0, dtype=object)
    per_instance = pixels.shape[1:]
    if pixels.dtype.kind not in "iuf" or per_instance not in ((INPUT_SIZE,), IMAGE_SHAPE):
        raise HTTPException(
            400,
            f"each instance must be {INPUT_SIZE} numbers or {IMAGE_SHAPE[0]} lists of "
            f"{IMAGE_SHAPE[1]}, got {'x'.join(map(str, per_instance)) or 'something else'} "
            f"({VALUE_KINDS.get(pixels.dtype.kind, 'number')} values)",
        )
    if not np.all((pixels >= 0) & (pixels <= 1)):  # also false for NaN
        raise HTTPException(400, "pixels must be within [0, 1]: normalized, value / 255")
    return pixels.reshape(len(pixels), INPUT_SIZE).astype(np.float32)


def router(
    models: Sequence[ServedModel],
    in_a_worker: InAWorker,
    classify: Classify,
    read_body: ReadBody,
    max_bytes: int,
    max_instances: int,
) -> APIRouter:
    """The routes, for `models`: `read_body` reads a request up to a size; in a worker thread
    (`in_a_worker`), its JSON is parsed and `classify` runs the model."""
    routes = APIRouter()

    @routes.get("/models/{name}")
    async def model_status(name: str) -> dict[str, object]:
        find(models, name, None)  # a 404 where none of that name is served
        return {"model_version_status": [status(m) for m in models if m.name == name]}

    @routes.get("/models/{name}/versions/{version}")
    async def version_status(name: str, version: str) -> dict[str, object]:
        return {"model_version_status": [status(find(models, name, version))]}

    async def predict(request: Request, name: str, version: str | None) -> dict[str, object]:
        model = find(models, name, version)
        body = await read_body(request, max_bytes, "JSON")

        def predictions() -> list[list[float]]:  # seconds of work for the largest batches
            return classify(model, instances_as_pixels(body, max_instances)).tolist()

        return {"predictions": await in_a_worker(predictions)}

    @routes.post("/models/{name}:predict")
    async def predict_latest(request: Request, name: str) -> dict[str, object]:
        return await predict(request, name, None)

    @routes.post("/models/{name}/versions/{version}:predict")
    async def predict_version(request: Request, name: str, version: str) -> dict[str, object]:
        return await predict(request, name, version)

    return routes
