"""TensorFlow Serving's REST API, for the clients people already have for it.

    GET  /v1/models/NAME[/versions/VERSION]           the model's status
    GET  /v1/models/NAME[/versions/VERSION]/metadata  its signature: what it takes and gives
    POST /v1/models/NAME[/versions/VERSION]:predict   {"instances": [...]} -> {"predictions": ...}
                                                      {"inputs": [...]} -> {"outputs": ...}

Each instance is one digit: 784 normalized pixels (value / 255, in [0, 1]) or 28 rows of 28,
or either named by the model's input, `{"pixels": ...}`; each prediction the ten digit
probabilities. The body is read in bounded work and memory (bounded_json). Errors are TensorFlow
Serving's: `{"error": "..."}`, 400 for a bad request, 404 for a model or version not served.
"""

from collections.abc import Sequence
from typing import Annotated

import numpy as np
from fastapi import APIRouter, Depends, HTTPException, Request

from mnist_pipeline.data.dataset import IMAGE_SHAPE, NUM_CLASSES
from mnist_pipeline.data.preprocessing import INPUT_NAME, INPUT_SIZE
from mnist_pipeline.web import bounded_json
from mnist_pipeline.web.bounded_json import bad
from mnist_pipeline.web.served import ServedModel
from mnist_pipeline.web.service import Reader, read_body, reader

SIGNATURE = "serving_default"  # TensorFlow Serving's name of a model's one signature
OUTPUT_NAME = "output_0"  # what Keras' LiteRT export names the model's one output


def find(models: Sequence[ServedModel], name: str, version: str | None) -> ServedModel:
    """The model served under `name` (and `version`: else the first of that name), or a 404
    worded as TensorFlow Serving words it."""
    if version and version.isascii() and version.isdigit():  # a number: 007 is 7
        version = version.lstrip("0") or "0"
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


def tensor(*dims: int) -> dict[str, object]:
    """A float32 tensor of these dimensions (-1: the batch), as TensorFlow Serving describes one
    (a TensorInfo in protobuf's JSON: int64 as strings)."""
    return {
        "dtype": "DT_FLOAT",
        "tensor_shape": {"dim": [{"size": str(dim), "name": ""} for dim in dims]},
    }


def metadata(model: ServedModel) -> dict[str, object]:
    """TensorFlow Serving's GetModelMetadataResponse for `model`: its one signature, a batch of
    784 pixels in, a batch of 10 probabilities out (what classifiers.check_digit_classifier
    requires of every model served)."""
    signature = {
        "inputs": {INPUT_NAME: tensor(-1, INPUT_SIZE)},
        "outputs": {OUTPUT_NAME: tensor(-1, NUM_CLASSES)},
        "method_name": "tensorflow/serving/predict",
    }
    return {
        "model_spec": {"name": model.name, "signature_name": "", "version": model.version},
        "metadata": {"signature_def": {"signature_def": {SIGNATURE: signature}}},
    }


def read_request(body: bytes, max_instances: int) -> tuple[np.ndarray, str]:
    """The request's digits as float32 (N, 784), and the key its answer goes under
    ("predictions" for `instances`, "outputs" for `inputs`); or a 400 saying what is wrong."""
    request = bounded_json.read(body, max_instances)
    document = request.document
    if not isinstance(document, dict) or ("instances" in document) == ("inputs" in document):
        raise bad(
            'expected a JSON object {"instances": [...]} or {"inputs": [...]}, one digit each'
        )
    signature = document.get("signature_name", SIGNATURE)
    if signature != SIGNATURE:
        raise bad(f'Serving signature name: "{signature}" not found in signature def')
    if "instances" in document:
        batch, key = document["instances"], "predictions"
    else:
        batch, key = named(document["inputs"]), "outputs"
    if (numbers := request.numbers(batch)) is not None:  # numbers, not instances: refused below
        batch = numbers.tolist()
    if isinstance(batch, list) and key == "predictions":
        batch = [named(instance) for instance in batch]
    if not isinstance(batch, list) or not 1 <= len(batch) <= max_instances:
        got = len(batch) if isinstance(batch, list) else bounded_json.kind_of(type(batch))
        raise bad(f"expected 1 to {max_instances} instances per request, got {got}")
    pixels = np.stack([image(request, instance) for instance in batch])
    if not np.all((pixels >= 0) & (pixels <= 1)):  # also false for NaN
        raise bad("pixels must be within [0, 1]: normalized, value / 255")
    return pixels.astype(np.float32), key


def named(value: object) -> object:
    """An instance or batch given by the model's input name, `{"pixels": ...}`, as itself."""
    if not isinstance(value, dict):
        return value
    if set(value) != {INPUT_NAME}:
        raise bad(f"expected the model's one input, {INPUT_NAME!r}, got {', '.join(value)}")
    return value[INPUT_NAME]


def image(request: bounded_json.Request, value: object) -> np.ndarray:
    """One digit, given as 784 numbers or 28 lists of 28, as float64 (784,)."""
    if (flat := request.numbers(value)) is not None:
        got = f"{len(flat)} numbers"
        if len(flat) == INPUT_SIZE:
            return flat
    elif isinstance(value, list) and len(value) == IMAGE_SHAPE[0]:
        rows = []
        for row in value:
            if (numbers := request.numbers(row)) is None or len(numbers) != IMAGE_SHAPE[1]:
                got = f"a row of {describe(request, row)}"
                break
            rows.append(numbers)
        else:
            return np.concatenate(rows)
    else:
        got = describe(request, value)
    raise bad(
        f"each instance must be {INPUT_SIZE} numbers or {IMAGE_SHAPE[0]} lists of "
        f"{IMAGE_SHAPE[1]}, got {got}"
    )


def describe(request: bounded_json.Request, value: object) -> str:
    """What a value that is no digit is, for the error: `783 numbers`, `a list of 27`, `text`."""
    if (numbers := request.numbers(value)) is not None:
        return f"{len(numbers)} numbers"
    if not isinstance(value, list):
        return bounded_json.kind_of(type(value))
    others = [v for v in value if not isinstance(v, list) and not request.holds_numbers(v)]
    if not others:
        return f"a list of {len(value)}"
    # Numbers beside lists or text: name what is not a number.
    odd = next((v for v in others if not isinstance(v, int | float)), others[0])
    return f"a list holding {bounded_json.kind_of(type(odd))}"


router = APIRouter()
Service = Annotated[Reader, Depends(reader)]


@router.get("/models/{name}")
async def model_status(name: str, service: Service) -> dict[str, object]:
    find(service.models, name, None)  # a 404 where none of that name is served
    return {"model_version_status": [status(m) for m in service.models if m.name == name]}


@router.get("/models/{name}/versions/{version}")
async def version_status(name: str, version: str, service: Service) -> dict[str, object]:
    return {"model_version_status": [status(find(service.models, name, version))]}


@router.get("/models/{name}/metadata")
async def latest_metadata(name: str, service: Service) -> dict[str, object]:
    return metadata(find(service.models, name, None))


@router.get("/models/{name}/versions/{version}/metadata")
async def version_metadata(name: str, version: str, service: Service) -> dict[str, object]:
    return metadata(find(service.models, name, version))


@router.post("/models/{name}:predict")
async def predict_latest(request: Request, name: str, service: Service) -> dict[str, object]:
    return await predict(request, service, name, None)


@router.post("/models/{name}/versions/{version}:predict")
async def predict_version(
    request: Request, name: str, version: str, service: Service
) -> dict[str, object]:
    return await predict(request, service, name, version)


async def predict(
    request: Request, service: Reader, name: str, version: str | None
) -> dict[str, object]:
    """The model's probabilities for the request's digits: the body read up to a size, then, in
    a worker thread, its JSON parsed and the model run."""
    model = find(service.models, name, version)
    body = await read_body(request, service.limits.max_json_bytes, "JSON")

    def answer() -> dict[str, object]:  # a second of work for the largest batches
        pixels, key = read_request(body, service.limits.max_instances)
        return {key: service.classify(model, pixels).tolist()}

    return await service.in_a_worker(answer)
