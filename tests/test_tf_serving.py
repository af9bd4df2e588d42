"""TensorFlow Serving's REST API on the web server, and two models served side by side."""

import json
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from glyphs import drawing, glyphs

from mnist_pipeline import paths
from mnist_pipeline.imaging import read_digit
from mnist_pipeline.inference import load_classifier
from mnist_pipeline.preprocessing import normalize_pixels
from mnist_pipeline.web import tf_serving
from mnist_pipeline.web.app import Limits, create_app

REPO = Path(__file__).resolve().parent.parent
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


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"{not json", "the request body is not JSON"),
        ({"inputs": [[0] * 784]}, 'expected a JSON object {"instances": [...]}'),
        ([[0] * 784], 'expected a JSON object {"instances": [...]}'),
        ({"instances": []}, "expected 1 to 3 instances per request, got 0"),
        ({"instances": [[0] * 784] * 4}, "expected 1 to 3 instances per request, got 4"),
        (
            {"instances": [[0] * 783]},
            "each instance must be 784 numbers or 28 lists of 28, got 783",
        ),
        ({"instances": [[[0] * 28] * 27]}, "got 27x28"),
        ({"instances": [[0] * 784, [0] * 783]}, "got something else (mixed values)"),
        ({"instances": [["0.5"] * 784]}, "(text values)"),
        ({"instances": [[True] * 784]}, "(true/false values)"),
        ({"instances": [[0.5] * 783 + [1.5]]}, "pixels must be within [0, 1]: normalized"),
        ({"instances": [[-0.1] + [0] * 783]}, "pixels must be within [0, 1]"),
        (b'{"instances": [[NaN' + b", 0" * 783 + b"]]}", "pixels must be within [0, 1]"),
    ],
    ids=[
        "not-json",
        "inputs",
        "bare-list",
        "none",
        "too-many",
        "short",
        "27x28",
        "ragged",
        "strings",
        "booleans",
        "above-1",
        "below-0",
        "nan",
    ],  # fmt: skip
)
def test_a_bad_request_is_a_400_saying_what_is_wrong(client, body, error):
    response = predict(client, body)
    assert response.status_code == 400
    assert error in response.json()["error"]


def test_as_many_instances_as_the_limit_and_pixels_at_both_ends_are_read(client):
    instances = [[0.0] * 784, [1.0] * 784, DIGITS[4].tolist()]
    response = predict(client, {"instances": instances})
    assert response.status_code == 200 and len(response.json()["predictions"]) == 3


def test_the_server_answers_others_while_a_request_s_json_is_parsed(client, monkeypatch):
    # Parsing the largest request takes seconds: on the event loop, nobody else would be answered
    # meanwhile. The parse here waits (up to 10 s) until another request has been answered.
    parsing, answered, parsed = threading.Event(), threading.Event(), threading.Event()
    parse = tf_serving.instances_as_pixels

    def slow_parse(body: bytes, max_instances: int):
        parsing.set()
        answered.wait(timeout=10)
        parsed.set()
        return parse(body, max_instances)

    monkeypatch.setattr(tf_serving, "instances_as_pixels", slow_parse)
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


def padded(document: dict, size: int) -> bytes:
    """`document` as JSON with spaces after it, `size` bytes in all: the same JSON."""
    body = json.dumps(document).encode()
    return body + b" " * (size - len(body))


# The bounds docs/web.md states: 1,000 instances in 20 MB of JSON are read; one instance or one
# byte more is refused.
@pytest.mark.parametrize(
    ("instances", "size", "status", "error"),
    [
        (1000, 20_000_000, 200, None),
        (1001, 20_000_000, 400, "expected 1 to 1000 instances per request, got 1001"),
        (1, 20_000_001, 413, "JSON too large: over 20,000,000 bytes"),
    ],
)
def test_by_default_1000_instances_in_20_mb_are_read(
    default_client, instances, size, status, error
):
    response = predict(default_client, padded({"instances": [[0] * 784] * instances}, size))
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


needs_the_pipelines_model = pytest.mark.skipif(
    not (REPO / paths.SERVING_MODEL_FILE).is_file()
    or not (REPO / paths.RAW_DIR / "x_test.npy").is_file(),
    reason="needs the pipeline's trained model and raw test set (`make pipeline`)",
)


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
