"""TensorFlow Serving's REST API on the web server, and two models served side by side."""

import json
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from mnist_pipeline.data.preprocessing import normalize_pixels
from mnist_pipeline.plumbing import paths
from mnist_pipeline.reading.classifiers import load_classifier
from mnist_pipeline.reading.imaging import read_digit
from mnist_pipeline.reading.registry import ModelSource
from mnist_pipeline.web import tf_serving
from mnist_pipeline.web.app import create_app
from mnist_pipeline.web.bounded_json import MAX_LIST_BYTES, MAX_STRING
from mnist_pipeline.web.limits import Limits
from mnist_pipeline.web.served import serving_version
from mnist_pipeline.web.service import Reader
from tests.support.glyphs import drawing, glyphs
from tests.support.outputs import needs_the_pipelines_model

REPO = Path(__file__).resolve().parents[2]
LOCAL = "http://127.0.0.1:8000"
LIMITS = Limits(max_instances=3, max_json_bytes=200_000)


def font_digits() -> np.ndarray:
    """The ten font digits, drawn as on the page and prepared as MNIST: float32 (10, 784)."""
    import io

    return normalize_pixels(
        np.stack([read_digit(io.BytesIO(drawing(d, 150, (140, 140)))) for d in range(10)])
    )


DIGITS = font_digits()


@pytest.fixture(scope="module")
def client(glyph_model):
    """Two versions of the glyph reader, "1" and "2" (the second is the first, to compare)."""
    app = create_app([glyphs(glyph_model, "1"), glyphs(glyph_model, "2")], LIMITS)
    with TestClient(app, base_url=LOCAL) as test_client:
        yield test_client


def predict(client, body, path="/v1/models/mnist-mlp:predict"):
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post(path, content=content, headers={"Content-Type": "application/json"})


def test_the_router_answers_in_any_application_that_holds_a_reader(glyph_model):
    app = FastAPI()  # none of create_app's middleware, the page or its API
    app.state.reader = Reader([glyphs(glyph_model, "7")], LIMITS)
    app.include_router(tf_serving.router, prefix="/tf")
    with TestClient(app) as test_client:
        response = predict(
            test_client,
            {"instances": DIGITS[:3].tolist()},
            "/tf/models/mnist-mlp/versions/7:predict",
        )
        missing = test_client.get("/tf/models/mnist-mlp/versions/8")
    assert np.array(response.json()["predictions"]).argmax(axis=1).tolist() == [0, 1, 2]
    assert missing.status_code == 404


def test_the_model_status_lists_each_version_served(client):
    available = {"state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
    response = client.get("/v1/models/mnist-mlp")
    assert response.status_code == 200
    assert response.json() == {
        "model_version_status": [{"version": "1", **available}, {"version": "2", **available}]
    }
    assert client.get("/v1/models/mnist-mlp/versions/2").json() == {
        "model_version_status": [{"version": "2", **available}]
    }


@pytest.mark.parametrize(
    ("path", "error"),
    [
        ("/v1/models/mnist-cnn", "Servable not found for request: Latest(mnist-cnn)"),
        (
            "/v1/models/mnist-mlp/versions/9",
            "Servable not found for request: Specific(mnist-mlp, 9)",
        ),
    ],
)
def test_a_model_or_version_not_served_is_a_404_as_tf_serving_says_it(client, path, error):
    for response in (
        client.get(path),
        predict(client, {"instances": [[0] * 784]}, f"{path}:predict"),
    ):
        assert response.status_code == 404
        assert response.json() == {"error": error}


@pytest.mark.parametrize("shape", ["flat", "28x28"])
def test_predictions_are_the_ten_probabilities_of_each_instance(client, glyph_model, shape):
    instances = DIGITS[:3] if shape == "flat" else DIGITS[:3].reshape(3, 28, 28)
    response = predict(client, {"instances": instances.tolist()})
    assert response.status_code == 200, response.text
    predictions = np.array(response.json()["predictions"])
    np.testing.assert_allclose(predictions, glyph_model(DIGITS[:3]), rtol=0, atol=1e-7)
    assert predictions.argmax(axis=1).tolist() == [0, 1, 2]


def test_a_version_is_addressed_by_its_path(client):
    response = predict(
        client, {"instances": DIGITS[7:8].tolist()}, "/v1/models/mnist-mlp/versions/2:predict"
    )
    assert response.status_code == 200
    assert np.argmax(response.json()["predictions"][0]) == 7


ZERO = [0] * 784
BAD_REQUESTS = {
    "not-json": (b"{not json", "the request body is not JSON"),
    "both": ({"instances": [ZERO], "inputs": [ZERO]}, 'expected a JSON object {"instances"'),
    "bare-list": ([ZERO], 'expected a JSON object {"instances": [...]} or {"inputs": [...]}'),
    "none": ({"instances": []}, "expected 1 to 3 instances per request, got 0"),
    "too-many": ({"instances": [ZERO] * 4}, "expected 1 to 3 instances per request, got 4"),
    "columnar-too-many": ({"inputs": [ZERO] * 4}, "expected 1 to 3 instances per request, got 4"),
    "short": (
        {"instances": [[0] * 783]},
        "each instance must be 784 numbers or 28 lists of 28, got 783 numbers",
    ),
    "27x28": ({"instances": [[[0] * 28] * 27]}, "got a list of 27"),
    "short-row": ({"instances": [[[0] * 28] * 27 + [[0] * 27]]}, "got a row of 27 numbers"),
    "ragged": ({"instances": [ZERO, [0] * 783]}, "got 783 numbers"),
    "strings": ({"instances": [[0.5] * 783 + ["0.5"]]}, "got a list holding text"),
    "a-number": ({"instances": [0.5]}, "got a number"),
    "booleans": ({"instances": [[True] * 784]}, "pixels must be numbers, got true/false"),
    "a-boolean": ({"instances": [[0] * 783 + [False]]}, "pixels must be numbers, got true/false"),
    "nulls": ({"instances": [[None] * 784]}, "pixels must be numbers, got null"),
    "above-1": ({"instances": [[0.5] * 783 + [1.5]]}, "pixels must be within [0, 1]: normalized"),
    "below-0": ({"instances": [[-0.1] + [0] * 783]}, "pixels must be within [0, 1]"),
    "nan": (b'{"instances": [[NaN' + b", 0" * 783 + b"]]}", "pixels must be within [0, 1]"),
    "huge-integer": ({"instances": [[10**400] + [0] * 783]}, "pixels must be within [0, 1]"),
    "signature": (
        {"signature_name": "predict", "instances": [ZERO]},
        'Serving signature name: "predict" not found in signature def',
    ),
    "input-name": (
        {"instances": [{"image": ZERO}]},
        "expected the model's one input, 'pixels', got image",
    ),
    "duplicate-key": (
        b'{"instances": [[0]], "instances": [[1]]}',
        "a key given twice in one object: instances",
    ),
    "escapes": (b'{"instances": [["\\u0030"]]}', "escapes in strings are not accepted"),
    # What once cost a 500 and a traceback each.
    "5000-digits": (b'{"instances": [[' + b"1" * 5000 + b"]]}", "not JSON: Exceeds the limit"),
    "1001-deep": (b'{"instances": ' + b"[" * 101 + b"]" * 101 + b"}", "nested 102 deep"),
    # What once cost hundreds of MiB: the body's structure is bounded before it is built.
    "long-string": ({"instances": [["x" * 150_000]]}, "a string of 150,000 characters"),
    "empty-lists": (b'{"instances": [' + b"[]," * 60_000 + b"[]]}", "120,008 brackets, braces"),
}


@pytest.mark.parametrize(("body", "error"), BAD_REQUESTS.values(), ids=BAD_REQUESTS)
def test_a_bad_request_is_a_400_saying_what_is_wrong(client, body, error):
    response = predict(client, body)
    assert response.status_code == 400
    assert error in response.json()["error"]
    assert "\n" not in response.json()["error"]


def named(instances: np.ndarray) -> list[dict[str, list]]:
    return [{"pixels": instance.tolist()} for instance in instances]


# TensorFlow Serving's request shapes (docs/web.md): rows of instances, each perhaps named by the
# model's input; columns, the batch as the input's value, perhaps named. Each reads the same.
REQUEST_SHAPES = {
    "instances": lambda digits: {"instances": digits.tolist()},
    "instances-28x28": lambda digits: {"instances": digits.reshape(-1, 28, 28).tolist()},
    "named-instances": lambda digits: {"instances": named(digits)},
    "named-28x28": lambda digits: {"instances": named(digits.reshape(-1, 28, 28))},
    "inputs": lambda digits: {"inputs": digits.tolist()},
    "named-inputs": lambda digits: {"inputs": {"pixels": digits.reshape(-1, 28, 28).tolist()}},
    "signature": lambda digits: {"signature_name": "serving_default", "inputs": digits.tolist()},
}


@pytest.mark.parametrize("shape", REQUEST_SHAPES)
def test_each_request_shape_reads_the_same_digits(client, glyph_model, shape):
    response = predict(client, REQUEST_SHAPES[shape](DIGITS[5:8]))
    assert response.status_code == 200, response.text
    [(key, predictions)] = response.json().items()
    assert key == ("predictions" if "instances" in REQUEST_SHAPES[shape](DIGITS[:1]) else "outputs")
    predictions = np.array(predictions)
    np.testing.assert_allclose(predictions, glyph_model(DIGITS[5:8]), rtol=0, atol=1e-7)
    assert predictions.argmax(axis=1).tolist() == [5, 6, 7]


def test_as_deep_as_a_request_nests_is_read_and_a_level_more_refused(client):
    deepest = {"inputs": {"pixels": DIGITS[:1].reshape(1, 28, 28).tolist()}}  # 5 levels
    assert predict(client, deepest).status_code == 200
    deeper = {"inputs": {"pixels": DIGITS[:1].reshape(1, 1, 28, 28).tolist()}}
    response = predict(client, deeper)
    assert response.status_code == 400
    assert response.json()["error"].startswith("nested 6 deep")


def test_a_list_of_numbers_as_long_as_allowed_is_read_and_a_byte_more_refused(client):
    numbers = ", ".join(["0.5"] * 784).encode()
    for padding, status in ((MAX_LIST_BYTES - len(numbers) - 2, 200), (1, 400)):
        numbers += b" " * padding
        response = predict(client, b'{"instances": [[' + numbers + b"]]}")
        assert response.status_code == status, response.text
    assert response.json()["error"] == "a list of 65,537 bytes: 784 pixels take at most 65,536"


def test_strings_as_long_as_a_name_may_be_are_read_and_a_character_more_refused(client):
    for length, error in ((MAX_STRING, "not found in signature def"), (MAX_STRING + 1, "a string")):
        response = predict(client, {"signature_name": "x" * length, "instances": [ZERO]})
        assert response.status_code == 400 and response.json()["error"].startswith(
            (f'Serving signature name: "{"x" * length}"', f"a string of {length} characters")
        )
        assert error in response.json()["error"]


def test_structure_and_text_are_bounded_by_the_instances_a_request_may_hold(client):
    # Three instances: at most 3 * 64 + 64 brackets, braces and quotes; 3 * 1024 + 1024 bytes
    # of JSON outside lists of numbers. {"x": [ holds 4, ]} 2, and each [] 2.
    for lists, error in ((125, 'expected a JSON object {"instances"'), (126, "258 brackets")):
        response = predict(client, b'{"x": [' + b",".join([b"[]"] * lists) + b"]}")
        assert response.json()["error"].startswith(error), response.text
    for spaces, error in ((4088, 'expected a JSON object {"instances"'), (4089, "4,097 bytes")):
        response = predict(client, b'{"x": 0' + b" " * spaces + b"}")
        assert response.json()["error"].startswith(error), response.text


def test_as_many_instances_as_the_limit_and_pixels_at_both_ends_are_read(client):
    instances = [[0.0] * 784, [1.0] * 784, DIGITS[4].tolist()]
    response = predict(client, {"instances": instances})
    assert response.status_code == 200 and len(response.json()["predictions"]) == 3


def test_the_server_answers_others_while_a_request_s_json_is_parsed(client, monkeypatch):
    # Parsing the largest request takes seconds: on the event loop, nobody else would be answered
    # meanwhile. The parse here waits (up to 10 s) until another request has been answered.
    parsing, answered, parsed = threading.Event(), threading.Event(), threading.Event()
    parse = tf_serving.read_request

    def slow_parse(body: bytes, max_instances: int):
        parsing.set()
        answered.wait(timeout=10)
        parsed.set()
        return parse(body, max_instances)

    monkeypatch.setattr(tf_serving, "read_request", slow_parse)
    with ThreadPoolExecutor(1) as other_client:
        pending = other_client.submit(predict, client, {"instances": DIGITS[:1].tolist()})
        assert parsing.wait(timeout=30)
        health = client.get("/api/health")
        answered_while_parsing = not parsed.is_set()
        answered.set()
        assert pending.result().status_code == 200
    assert health.status_code == 200 and answered_while_parsing


@pytest.fixture(scope="module")
def default_client(glyph_model):
    """The server with its default limits."""
    with TestClient(create_app([glyphs(glyph_model)]), base_url=LOCAL) as test_client:
        yield test_client


def padded(instances: int, size: int) -> bytes:
    """`instances` blank digits as `{"instances": ...}` JSON of `size` bytes in all, each pixel's 0
    written with as many decimal zeros as it takes: the bytes a client sends, all of them numbers.
    """
    pixels = instances * 784
    body = json.dumps({"instances": [[0] * 784] * instances}).encode()
    zeros, longer = divmod(size - len(body) - 2 * pixels, pixels)  # "0" -> "0.0" and its zeros
    numbers = iter([b"0.0" + b"0" * (zeros + 1)] * longer + [b"0.0" + b"0" * zeros] * pixels)
    rows = (b"[" + b", ".join(next(numbers) for _ in range(784)) + b"]" for _ in range(instances))
    return b'{"instances": [' + b", ".join(rows) + b"]}"


# The bounds docs/web.md states: 1,000 instances in 20 MB of JSON are read; one instance or one
# byte more is refused.
@pytest.mark.parametrize(
    ("instances", "size", "status", "error"),
    [
        (1000, 20_000_000, 200, None),
        (1001, 20_000_000, 400, "expected 1 to 1000 instances per request, got 1001"),
        (1000, 20_000_001, 413, "JSON too large: over 20,000,000 bytes"),
    ],
)
def test_by_default_1000_instances_in_20_mb_are_read(
    default_client, instances, size, status, error
):
    body = padded(instances, size)
    assert len(body) == size
    response = predict(default_client, body)
    assert response.status_code == status
    if error:
        assert response.json() == {"error": error}
    else:
        assert len(response.json()["predictions"]) == instances


def test_a_body_over_the_json_limit_is_a_413(client):
    response = predict(client, b" " * (LIMITS.max_json_bytes + 1))
    assert response.status_code == 413
    assert response.json() == {"error": "JSON too large: over 200,000 bytes"}


def test_the_page_api_reads_with_both_models_each_named(client, glyph_model):
    response = client.post(
        "/api/predict", content=drawing(3, 150, (140, 140)), headers={"Content-Type": "image/png"}
    )
    readings = response.json()["readings"]
    assert [reading["model"]["version"] for reading in readings] == ["1", "2"]
    assert [reading["digit"] for reading in readings] == [3, 3]
    assert client.get("/api/health").json()["models"][1]["version"] == "2"


@needs_the_pipelines_model
def test_real_mnist_digits_get_the_same_answer_as_predict_json(tmp_path):
    digits = np.load(REPO / paths.RAW_DIR / "x_test.npy", mmap_mode="r")[:20]
    files = []
    for number, digit in enumerate(digits):
        files.append(tmp_path / f"{number}.npy")
        np.save(files[-1], digit)
    command = [sys.executable, "-m", "mnist_pipeline.predict", "--json", *map(str, files)]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr

    model = glyphs(load_classifier(REPO / paths.SERVING_MODEL_FILE))
    with TestClient(create_app([model]), base_url=LOCAL) as client:  # a plain JSON client
        response = predict(client, {"instances": normalize_pixels(digits).tolist()})
    predictions = np.array(response.json()["predictions"])
    for reading, probabilities in zip(json.loads(result.stdout), predictions, strict=True):
        assert reading["digit"] == int(np.argmax(probabilities))
        assert reading["probability"] == round(float(np.max(probabilities)), 6)
    labels = np.load(REPO / paths.RAW_DIR / "y_test.npy")[:20]
    assert (predictions.argmax(axis=1) == labels).mean() >= 0.9


def signature_metadata(version: str) -> dict[str, object]:
    """What TensorFlow Serving answers for a model of 784 float pixels in, 10 floats out."""

    def tensor(size: str) -> dict[str, object]:
        dims = [{"size": "-1", "name": ""}, {"size": size, "name": ""}]
        return {"dtype": "DT_FLOAT", "tensor_shape": {"dim": dims}}

    return {
        "model_spec": {"name": "mnist-mlp", "signature_name": "", "version": version},
        "metadata": {
            "signature_def": {
                "signature_def": {
                    "serving_default": {
                        "inputs": {"pixels": tensor("784")},
                        "outputs": {"output_0": tensor("10")},
                        "method_name": "tensorflow/serving/predict",
                    }
                }
            }
        },
    }


@pytest.mark.parametrize(
    ("path", "version"),
    [("/v1/models/mnist-mlp", "1"), ("/v1/models/mnist-mlp/versions/2", "2"),
     ("/v1/models/mnist-mlp/versions/002", "2")],
)  # fmt: skip
def test_the_metadata_is_the_signature_as_tf_serving_gives_it(client, path, version):
    response = client.get(f"{path}/metadata")
    assert response.status_code == 200
    assert response.json() == signature_metadata(version)


@pytest.mark.parametrize(
    ("path", "wanted"),
    [("mnist-cnn", "Latest(mnist-cnn)"), ("mnist-mlp/versions/3", "Specific(mnist-mlp, 3)"),
     ("mnist-mlp/versions/v2", "Specific(mnist-mlp, v2)")],
)  # fmt: skip
def test_the_metadata_of_a_model_not_served_is_a_404(client, path, wanted):
    response = client.get(f"/v1/models/{path}/metadata")
    assert response.status_code == 404
    assert response.json() == {"error": f"Servable not found for request: {wanted}"}


@pytest.mark.parametrize(
    ("version", "number"),
    [
        ("v1.0.0", "1000000"),
        ("v1.2.3", "1002003"),
        ("0.0.1", "1"),
        ("v999.999.999", "999999999"),
        ("v1000.0.0", "2983486093"),  # too large a part: the md5's, as without a version
        ("v1.0", "2983486093"),
        (None, "2983486093"),  # 0xb1d4628d
    ],
)
def test_a_served_version_is_a_number_the_label_names_too(version, number):
    source = ModelSource("m", Path("m.tflite"), "b1d4628d70d19aeb07ac8fe9a1d49bbf", version)
    assert serving_version(source) == number
    assert source.label(served_as=number).endswith(f", served as version {number})")
