"""The web server: its JSON API through FastAPI's test client, and the `mnist-web` command.

The API tests use a classifier built without training whose weights are the ten digits of
Pillow's font (it reads those right), so they need neither data nor the pipeline's model; the
comparison with `predict --json` uses the real model and MNIST where `make pipeline` made them.
Clients that leave mid-upload are sent to the real command (launch.serving), for that classifier.
"""

import io
import json
import os
import platform
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.error import HTTPError
from urllib.parse import urlsplit
from urllib.request import Request, urlopen

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from mnist_pipeline.plumbing import paths
from mnist_pipeline.plumbing.errors import PipelineError
from mnist_pipeline.reading.classifiers import classify, load_classifier
from mnist_pipeline.reading.imaging import read_digit
from mnist_pipeline.web import memory, service
from mnist_pipeline.web.app import create_app
from mnist_pipeline.web.limits import Limits
from mnist_pipeline.web.serve import build_parser, model_references, warn_if_reachable
from tests.support.glyphs import drawing, glyphs, png
from tests.support.launch import serving
from tests.support.outputs import needs_the_pipelines_model
from tests.support.pictures import many_page_tiff, png_claiming, seven

REPO = Path(__file__).resolve().parents[2]
LIMITS = Limits(max_bytes=100_000, max_pixels=1_000_000)
READING_FIELDS = {"digit", "probability", "runner_up", "runner_up_probability", "unsure"}
# TestClient's own default, http://testserver, is a name the server refuses (DNS rebinding).
LOCAL = "http://127.0.0.1:8000"


@pytest.fixture(scope="module")
def client(glyph_model):
    with TestClient(create_app([glyphs(glyph_model)], LIMITS), base_url=LOCAL) as test_client:
        yield test_client


def post_image(client, body: bytes, content_type: str | None = "image/png"):
    headers = {"Content-Type": content_type} if content_type else {}
    return client.post("/api/predict", content=body, headers=headers)


# --- good drawings -------------------------------------------------------------------------------


@pytest.mark.parametrize("digit", range(10))
def test_a_drawn_digit_is_read_through_predicts_own_code(client, glyph_model, digit):
    body = drawing(digit, size=120, at=(100, 170))  # smaller and off centre: prepared like MNIST
    response = post_image(client, body)

    assert response.status_code == 200, response.text
    answer = response.json()
    assert set(answer) == {"input", "readings"}
    [reading] = answer["readings"]
    assert set(reading) == READING_FIELDS | {"probabilities", "model"}
    assert reading["model"]["label"] == "glyphs"
    assert reading["digit"] == digit
    # The picture and the probabilities are read_digit's and classify's on the same bytes.
    prepared = read_digit(io.BytesIO(body))
    np.testing.assert_array_equal(np.array(answer["input"], dtype=np.uint8), prepared)
    expected = classify(glyph_model, [prepared])[0]
    assert reading["probabilities"] == [round(float(p), 6) for p in expected]
    assert reading["probability"] == round(float(expected[digit]), 6)
    assert reading["runner_up"] == int(np.argsort(-expected, kind="stable")[1])


def test_health(client):
    response = client.get("/api/health")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "models": [{"label": "glyphs", "name": "mnist-mlp", "version": "1", "accuracy": None}],
        "collecting": False,
    }


# --- bad input -----------------------------------------------------------------------------------


A_ONE = drawing(1, size=150, at=(140, 140))
WANTS_AN_IMAGE = "expected an image (Content-Type image/png)"


def truncated_png() -> bytes:
    return drawing(4, size=150, at=(140, 140))[:300]


@pytest.mark.parametrize(
    ("body", "content_type", "status", "message"),
    [
        (b"GIF? no: plain text\n", "image/png", 422, "upload: not an image file"),
        (truncated_png(), "image/png", 422, "upload: cannot read image"),
        (png(Image.new("RGB", (280, 280), "white")), "image/png", 422, "upload: blank image"),
        (png(Image.new("RGBA", (280, 280), (0, 0, 0, 0))), "image/png", 422, "upload: blank image"),
        (
            b"\x89PNG" + bytes(LIMITS.max_bytes),
            "image/png",
            413,
            "image too large: over 100,000 bytes",
        ),
        (png_claiming(1001, 1000), "image/png", 413, "image too large: 1001x1000 pixels"),
        (png_claiming(30_000, 30_000), "image/png", 413, "image too large: Image size"),
        (
            png(seven((801, 40), 36, (30, 20))),
            "image/png",
            422,
            "upload: 801x40 pixels: too elongated to hold a digit (more than 20:1)",
        ),
        (A_ONE, "text/plain", 415, f"{WANTS_AN_IMAGE}, got text/plain"),
        (A_ONE, "application/json", 415, f"{WANTS_AN_IMAGE}, got application/json"),
        (A_ONE, None, 415, f"{WANTS_AN_IMAGE}, got none"),
        (b"", "image/png", 400, "empty request: send the drawing as a PNG image"),
        (many_page_tiff(700), "image/tiff", 422, "upload: has several frames"),
    ],
    ids=[
        "not-an-image",
        "truncated",
        "blank",
        "transparent",
        "too-many-bytes",
        "too-many-pixels",
        "decompression-bomb",
        "too-elongated",
        "text",
        "json",
        "no-content-type",
        "missing-body",
        "many-pages",
    ],
)
def test_bad_input_is_a_4xx_with_a_one_line_reason(client, body, content_type, status, message):
    response = post_image(client, body, content_type)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error.startswith(message) and "\n" not in error


def test_a_body_without_content_length_is_capped_while_read(client):
    chunks = (bytes(10_000) for _ in range(50))  # 500 kB sent chunked: no Content-Length
    response = client.post("/api/predict", content=chunks, headers={"Content-Type": "image/png"})
    assert "content-length" not in response.request.headers
    assert response.status_code == 413
    assert response.json() == {"error": "image too large: over 100,000 bytes"}


def test_the_server_keeps_reading_after_bad_input(glyph_model):
    # As uvicorn does: an error inside the app becomes a 500 response, not a raised exception.
    app = create_app([glyphs(glyph_model)], LIMITS)
    with TestClient(app, base_url=LOCAL, raise_server_exceptions=False) as c:
        for body in (b"junk", truncated_png(), b"", png_claiming(5000, 5000)):
            assert 400 <= post_image(c, body).status_code < 500
        response = post_image(c, drawing(3, size=150, at=(140, 140)))
    assert response.status_code == 200 and response.json()["readings"][0]["digit"] == 3


def test_a_burst_is_read_at_most_limits_decoders_at_a_time_and_its_memory_given_back(
    glyph_model, monkeypatch
):
    limits = Limits(decoders=2)
    reading = most = 0
    lock = threading.Lock()
    too_many = threading.Event()

    def watched_read_digit(*args, **kwargs):
        nonlocal reading, most
        with lock:
            reading += 1
            most = max(most, reading)
            if reading > limits.decoders:
                too_many.set()
        too_many.wait(timeout=0.2)  # time for the other requests to come in, were they let in
        with lock:
            reading -= 1
        return read_digit(*args, **kwargs)

    given_back_while_reading = []  # how many were being read each time memory was given back
    monkeypatch.setattr(service, "read_digit", watched_read_digit)
    monkeypatch.setattr(
        memory, "give_back_free_memory", lambda: given_back_while_reading.append(reading)
    )
    app = create_app([glyphs(glyph_model)], limits)
    with TestClient(app, base_url=LOCAL) as c, ThreadPoolExecutor(6) as clients:
        responses = list(clients.map(lambda _: post_image(c, A_ONE), range(6)))
    assert [response.status_code for response in responses] == [200] * 6
    assert most <= limits.decoders
    # Once each time none is left to read: at least after the last.
    assert given_back_while_reading and set(given_back_while_reading) == {0}


def test_a_model_is_called_by_one_request_at_a_time(glyph_model):
    calling = most = 0
    lock = threading.Lock()
    crowded = threading.Event()

    def watched_model(pixels):  # LiteRT's interpreter is not safe to call from two threads
        nonlocal calling, most
        with lock:
            calling += 1
            most = max(most, calling)
            if calling > 1:
                crowded.set()
        crowded.wait(timeout=0.2)  # time for the other requests to come in, were they let in
        with lock:
            calling -= 1
        return glyph_model(pixels)

    app = create_app([glyphs(watched_model)], Limits(decoders=4))
    with TestClient(app, base_url=LOCAL) as c, ThreadPoolExecutor(4) as clients:
        responses = list(clients.map(lambda _: post_image(c, A_ONE), range(4)))
    assert [response.status_code for response in responses] == [200] * 4
    assert most == 1


@pytest.fixture(scope="module")
def default_client(glyph_model):
    """The server with its default limits."""
    with TestClient(create_app([glyphs(glyph_model)]), base_url=LOCAL) as test_client:
        yield test_client


# The bounds docs/web.md states: 2,000,000 bytes and 4,000,000 pixels are read, a byte or a row
# more refused.
@pytest.mark.parametrize(("size", "status"), [(2_000_000, 200), (2_000_001, 413)])
def test_by_default_a_picture_of_up_to_2_000_000_bytes_is_read(default_client, size, status):
    response = post_image(default_client, A_ONE + bytes(size - len(A_ONE)))  # zeros after its end
    assert response.status_code == status, response.text
    if status == 413:
        assert response.json() == {"error": "image too large: over 2,000,000 bytes"}


@pytest.mark.parametrize(
    ("size", "status"), [((2000, 2000), 200), ((2001, 2000), 413), ((2000, 2001), 413)]
)
def test_by_default_a_picture_of_up_to_4_000_000_pixels_is_read(default_client, size, status):
    response = post_image(default_client, png(seven(size, 1400, (1000, 1000))))
    assert response.status_code == status, response.text
    if status == 413:
        assert response.json() == {
            "error": f"image too large: {size[0]}x{size[1]} pixels, the limit is 4,000,000"
        }


def test_at_most_as_many_pictures_are_read_at_once_as_there_are_cpus_by_default():
    assert Limits().decoders == os.cpu_count()


def test_a_failure_inside_the_server_is_a_json_500_and_one_log_line_naming_the_request(caplog):
    broken_model = object()  # not callable: classify fails as a bug would
    app = create_app([glyphs(broken_model)], LIMITS)
    with TestClient(app, base_url=LOCAL) as c:  # it would raise what the app let through
        response = post_image(c, drawing(3, size=150, at=(140, 140)))
    assert response.status_code == 500
    request_id = response.headers["x-request-id"]
    assert re.fullmatch("[0-9a-f]{12}", request_id)
    assert response.json() == {"error": f"internal error (request {request_id})"}
    assert "default-src 'self'" in response.headers["content-security-policy"]
    errors = [record for record in caplog.records if record.levelname == "ERROR"]
    assert [(record.getMessage(), record.exc_info) for record in errors] == [
        (
            f"POST /api/predict failed (request {request_id}): TypeError: 'object' object is "
            "not callable",
            None,
        )
    ]


# --- what is served ------------------------------------------------------------------------------


def test_the_page_and_its_files_are_served_with_a_same_origin_policy(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    # Everything the page refers to is one of its own files: nothing from another host.
    references = re.findall(r'(?:src|href)="([^"]*)"', page.text)
    assert set(references) == {"style.css", "app.js", "data:,"}
    for name in ("", "style.css", "app.js"):
        response = client.get(f"/{name}")
        assert response.status_code == 200 and "://" not in response.text  # no absolute URLs


@pytest.mark.parametrize(
    "path",
    [
        "/docs",
        "/redoc",
        "/openapi.json",
        "/api",
        "/%2e%2e/app.py",  # ../app.py: the module beside static/
        "/..%2fserve.py",
        "/%2e%2e/%2e%2e/predict.py",
    ],
)
def test_nothing_else_is_served(client, path):
    response = client.get(path)
    assert response.status_code == 404
    assert response.json() == {"error": "Not Found"}


def test_wrong_method_is_a_json_405(client):
    response = client.post("/")
    assert response.status_code == 405 and response.json() == {"error": "Method Not Allowed"}


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        *[(method, "/api/predict", {"POST"}) for method in ("GET", "PUT", "DELETE", "PATCH")],
        ("HEAD", "/api/predict", {"POST"}),
        *[(method, "/api/health", {"GET", "HEAD"}) for method in ("POST", "PUT", "DELETE")],
    ],
)
def test_a_wrong_method_on_the_api_is_a_405_that_names_the_right_ones(
    client, method, path, allowed
):
    response = client.request(method, path, content=A_ONE, headers={"Content-Type": "image/png"})
    assert response.status_code == 405
    assert set(response.headers["allow"].split(", ")) == allowed
    if method != "HEAD":  # a HEAD answer has no body
        assert response.json() == {"error": "Method Not Allowed"}


def test_health_answers_head_too(client):
    response = client.head("/api/health")
    assert response.status_code == 200 and response.content == b""


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "127.0.0.1:8000",
        "localhost",
        "LocalHost:8000",
        "[::1]",
        "[::1]:8000",
        "localhost:9000",  # the port is not checked: a tunnel (ssh -L 9000:...) changes it
    ],
)
def test_requests_naming_this_machine_are_answered(client, host):
    assert client.get("/api/health", headers={"Host": host}).status_code == 200


REFUSED_HOSTS = [
    "evil.example",
    "evil.example:8000",
    "127.0.0.1.evil.example",
    "localhost.evil.example:8000",
    "evil.example:8000@localhost",
    "testserver",
    "127.0.0.2:8000",
    "[::2]:8000",
    "10.0.0.1",
    "localhost:http",
    "",
]


@pytest.mark.parametrize("host", REFUSED_HOSTS)
@pytest.mark.parametrize("path", ["/", "/app.js", "/api/health", "/api/predict"])
def test_a_host_header_naming_another_host_is_refused(client, host, path):
    # What a web page elsewhere sends once its own name resolves to 127.0.0.1 (DNS rebinding).
    response = client.post(path, content=A_ONE, headers={"Host": host, "Content-Type": "image/png"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error.startswith(f"Host {host!r} is not a name of this server") and "\n" not in error
    assert "default-src 'self'" in response.headers["content-security-policy"]


@pytest.mark.parametrize(
    ("served", "host", "answered"),
    [
        ("192.168.1.5", "192.168.1.5:8000", True),
        ("192.168.1.5", "127.0.0.1:8000", True),
        ("192.168.1.5", "192.168.1.6:8000", False),
        ("digits.lan", "Digits.lan:8000", True),
        ("digits.lan", "evil.example:8000", False),
        ("::1", "[::1]:8000", True),
        ("fe80::1", "[fe80::1]:8000", True),
        # Every interface: other machines name it by any of its addresses, not by a DNS name.
        ("0.0.0.0", "192.168.1.5:8000", True),
        ("0.0.0.0", "[fe80::1]:8000", True),
        ("0.0.0.0", "0.0.0.0:8000", True),
        ("0.0.0.0", "digits.lan:8000", False),
        ("::", "10.0.0.1", True),
        ("::", "evil.example", False),
    ],
)
def test_the_host_served_is_answered_too(glyph_model, served, host, answered):
    with TestClient(create_app([glyphs(glyph_model)], LIMITS, host=served)) as c:
        response = c.get("/api/health", headers={"Host": host})
    assert response.status_code == (200 if answered else 400)


# --- the same answer as `predict --json` ---------------------------------------------------------


@needs_the_pipelines_model
def test_real_mnist_digits_get_the_same_answer_as_predict(tmp_path):
    digits = np.load(REPO / paths.RAW_DIR / "x_test.npy", mmap_mode="r")[:5]
    labels = np.load(REPO / paths.RAW_DIR / "y_test.npy", mmap_mode="r")[:5]
    files = []
    for number, digit in enumerate(digits):  # as drawn on the page: dark on white, 280x280
        picture = Image.fromarray(255 - digit).resize((280, 280), Image.Resampling.BICUBIC)
        files.append(tmp_path / f"{number}.png")
        picture.save(files[-1])

    app = create_app([glyphs(load_classifier(REPO / paths.SERVING_MODEL_FILE))])
    with TestClient(app, base_url=LOCAL) as client:
        answers = [post_image(client, file.read_bytes()).json()["readings"][0] for file in files]
    command = [sys.executable, "-m", "mnist_pipeline.predict", "--json", *map(str, files)]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr

    # The page reads one picture at a time, predict these five as one batch: two computations,
    # which LiteRT's kernels agree on to float rounding, not bit for bit.
    for answer, reading, file in zip(answers, json.loads(result.stdout), files, strict=True):
        assert reading["file"] == str(file)
        assert {key: answer[key] for key in READING_FIELDS} == {
            key: pytest.approx(reading[key], abs=1e-5) for key in READING_FIELDS
        }
    assert [answer["digit"] for answer in answers] == labels.tolist()


def test_ctrl_c_stops_the_server_with_status_0_and_no_error_line(glyph_model_file):
    with serving(glyph_model_file) as server:
        with urlopen(f"{server.url}api/health", timeout=60) as health:  # up and answering
            assert health.status == 200
        server.process.send_signal(signal.SIGINT)  # what Ctrl-C sends
        assert server.process.wait(timeout=60) == 0  # so `make serve` reports no error
        time.sleep(0.5)  # the reader thread takes the last lines
        assert server.log[-1] == "INFO mnist_pipeline.web.serve: stopped", server.log
        assert not any("interrupted" in line or "Traceback" in line for line in server.log)
        assert not any("uvicorn.error" in line for line in server.log)  # start, stop: with -v


# --- the real server: clients that leave mid-upload ----------------------------------------------


@pytest.fixture(scope="module")
def real_server(glyph_model_file):
    with serving(glyph_model_file) as running:
        yield running


def new_lines(server, start: int, until: str) -> list[str]:
    """The server's log lines from line `start` on, once one of them contains `until`."""
    deadline = time.monotonic() + 60
    while not any(until in line for line in server.log[start:]):
        assert time.monotonic() < deadline, f"no {until!r} in the server's log:\n" + "\n".join(
            server.log[start:]
        )
        time.sleep(0.05)
    return server.log[start:]


def leave_mid_upload(server, request: bytes) -> list[str]:
    """Send `request` on a raw connection and close it unanswered: what the server logged."""
    start = len(server.log)
    address = urlsplit(server.url)
    with socket.create_connection((address.hostname, address.port)) as connection:
        connection.sendall(request)
    new_lines(server, start, until="/api/predict")
    # Whatever that request logs comes before this one's answer: the server is not stuck on it.
    with urlopen(f"{server.url}api/health", timeout=60) as health:
        assert health.status == 200
    return new_lines(server, start, until="GET /api/health")


HEADERS = b"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/png\r\n"


def test_a_client_gone_mid_upload_is_one_warning_line(real_server):
    request = HEADERS + b"Content-Length: 1000000\r\n\r\n" + A_ONE[:5000]
    lines = leave_mid_upload(real_server, request)
    assert not any("Traceback" in line for line in lines), "\n".join(lines)
    assert [line for line in lines if line.startswith(("WARNING", "ERROR"))] == [
        "WARNING mnist_pipeline.web.app: POST /api/predict from 127.0.0.1: the connection "
        "closed before the whole request arrived"
    ]


def test_a_malformed_chunked_body_is_one_warning_line_each_from_uvicorn_and_the_app(real_server):
    request = HEADERS + b"Transfer-Encoding: chunked\r\n\r\n10\r\n0123456789abcdef\r\nzz\r\n"
    lines = leave_mid_upload(real_server, request)
    assert not any("Traceback" in line for line in lines), "\n".join(lines)
    assert [line for line in lines if line.startswith(("WARNING", "ERROR"))] == [
        "WARNING uvicorn.error: Invalid HTTP request received.",
        "WARNING mnist_pipeline.web.app: POST /api/predict from 127.0.0.1: the connection "
        "closed before the whole request arrived",
    ]


NASTY_JSON = [
    b'{"instances": ' + b"[" * 1001 + b"]" * 1001 + b"}",
    b'{"instances": [[' + b"9" * 5000 + b"]]}",
    json.dumps({"instances": [["x" * 500_000], *[["y"]] * 999]}).encode(),
    b'{"instances": [' + b"[]," * 6_600_000 + b"[]]}",
    b'{"instances": [[1e999' + b", 0" * 783 + b"]]}",
    b'{"instances": [{}], "inputs": {"pixels": {"pixels": 1}}}',
    b'{"inputs": {"pixels": {"pixels": [1]}}}',
    b'{"instances": [[[[]]]]}',
    b'{"instances": [[0' + b", 0" * 782 + b', {"a": [1]}]]}',
    b"\xff\xfe\x00{",
    b"",
    b"null",
    b'{"instances": 1' + b" " * 19_000_000 + b"}",
]
NASTY_PICTURES = [
    many_page_tiff(),
    truncated_png(),
    bytes(1000),
    png_claiming(30_000, 30_000),
    b"\x89PNG\r\n\x1a\n" + bytes(1_999_000),
]


def test_the_nastiest_bodies_get_a_4xx_and_leave_no_error_in_the_log(real_server):
    start = len(real_server.log)
    requests = [("v1/models/mnist-mlp:predict", "application/json", b) for b in NASTY_JSON]
    requests += [("api/predict", "image/png", body) for body in NASTY_PICTURES]
    for path, content_type, body in requests:
        request = Request(f"{real_server.url}{path}", body, headers={"Content-Type": content_type})
        try:
            with urlopen(request, timeout=60) as response:
                status = response.status
        except HTTPError as error:
            status, answer = error.code, json.loads(error.read())
            assert "\n" not in answer["error"]
        assert 400 <= status < 500, (path, body[:60], status)
    lines = new_lines(real_server, start, until="POST /api/predict")
    with urlopen(f"{real_server.url}api/health", timeout=5) as health:
        assert health.status == 200
    assert not [line for line in lines if "Traceback" in line or line.startswith("ERROR")]


# --- the command ---------------------------------------------------------------------------------


def run_web(*args: object) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "mnist_pipeline.web", *map(str, args)]
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120)


def test_by_default_it_serves_the_pipelines_model_on_loopback():
    args = build_parser().parse_args([])
    assert (args.host, args.port) == ("127.0.0.1", 8000)
    assert model_references(args.model) == [str(paths.SERVING_MODEL_FILE)]


def test_one_or_two_models_are_served_and_no_more():
    for given in (["a"], ["a", "b"]):
        args = build_parser().parse_args([option for name in given for option in ("--model", name)])
        assert model_references(args.model) == given
    with pytest.raises(PipelineError, match="--model: at most 2 models side by side, got 3"):
        model_references(["a", "b", "c"])


def test_no_trained_model_is_one_line_and_status_1(tmp_path):
    result = run_web("--model", tmp_path / "none.keras", "--port", 0)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"mnist-web: error: {tmp_path / 'none.keras'}: no trained model; "
        "run `dvc repro` in the project first, or name the model with --model PATH"
    ]


def test_a_taken_port_is_one_line_and_status_1(tmp_path):
    model = tmp_path / "model.keras"
    model.write_bytes(b"never loaded: the port is checked first")
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        result = run_web("--model", model, "--port", port)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"mnist-web: error: cannot listen on 127.0.0.1:{port}: Address already in use"
    ]


def test_a_port_out_of_range_is_refused_by_the_parser(capsys):
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["--port", "70000"])
    assert exit_.value.code == 2
    assert "expected a port number 0-65535, got '70000'" in capsys.readouterr().err


def test_serving_other_machines_is_one_warning_line(caplog):
    # Bound but not listening: nothing is served, whatever the address.
    with socket.socket() as sock:
        sock.bind(("0.0.0.0", 0))
        warn_if_reachable(sock, "0.0.0.0")
    assert [(record.levelname, record.getMessage()) for record in caplog.records] == [
        (
            "WARNING",
            "--host 0.0.0.0: the page is reachable from other machines, with no authentication",
        )
    ]


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_serving_this_machine_only_is_said_nothing_about(caplog, host):
    with socket.socket() as sock:
        sock.bind((host, 0))
        warn_if_reachable(sock, host)
    assert caplog.records == []


# In a process of its own: it changes how that whole process allocates memory.
A_BURST_GIVEN_BACK = """
import threading, numpy as np, psutil
from mnist_pipeline.web import memory
memory.use_one_arena()
def read():  # as a thread reading pictures does
    for _ in range(3):
        pixels = np.ones((2000, 2000), np.float32)  # 16 MB, as a 2000x2000 picture's
        del pixels
before = psutil.Process().memory_info().rss
reader = threading.Thread(target=read)
reader.start()
reader.join()
memory.give_back_free_memory()
print(psutil.Process().memory_info().rss - before)
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="a setting of glibc's malloc")
def test_the_memory_a_thread_freed_goes_back_to_the_system():
    # By default glibc keeps the second and later 16 MB blocks, in the thread's own arena.
    result = subprocess.run(
        [sys.executable, "-c", A_BURST_GIVEN_BACK], cwd=REPO, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) < 2**20
