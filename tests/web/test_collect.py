"""POST /api/collect (mnist-web --collect DIR): the page files the picture the network was given
with its right digit, through FastAPI's test client and the glyph classifier (no data needed)."""

import asyncio
import hashlib
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from mnist_pipeline.data import collection
from mnist_pipeline.web.app import create_app
from mnist_pipeline.web.limits import Limits
from mnist_pipeline.web.serve import build_parser
from tests.support.glyphs import drawing, glyphs
from tests.support.read_only import read_only

LOCAL = "http://127.0.0.1:8000"  # TestClient's address, a name the server answers to
SAME_ORIGIN = {"Origin": LOCAL, "Sec-Fetch-Site": "same-origin"}  # what Chromium sends
LIMITS = Limits(max_collect_bytes=8_000)


def picture(seed: int) -> list[list[int]]:
    return np.random.default_rng(seed).integers(0, 256, (28, 28)).tolist()


def name_of(pixels: list[list[int]]) -> str:
    """The file name the layout gives a drawing: 16 hex digits of the SHA-256 of its bytes."""
    return hashlib.sha256(bytes(value for row in pixels for value in row)).hexdigest()[:16] + ".png"


def files(folder: Path) -> list[str]:
    """Every file under `folder`, a temporary one too, by its path in it."""
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


@pytest.fixture
def folder(tmp_path):
    return tmp_path / "drawings"


@pytest.fixture
def client(glyph_model, folder):
    app = create_app([glyphs(glyph_model)], LIMITS, collection=folder)
    with TestClient(app, base_url=LOCAL) as test_client:
        yield test_client


def post(client, document: object, headers: dict[str, str] = SAME_ORIGIN, **kwargs):
    return client.post(
        "/api/collect",
        content=json.dumps(document),
        headers={"Content-Type": "application/json", **headers},
        **kwargs,
    )


def test_a_drawing_is_filed_under_its_digit_by_the_hash_of_its_pixels(client, folder):
    pixels = picture(0)
    response = post(client, {"input": pixels, "label": 7})
    assert response.status_code == 200, response.text
    path = f"7/{name_of(pixels)}"
    assert response.json() == {
        "outcome": "added",
        "path": path,
        "label": 7,
        "relabelled_from": None,
    }
    assert files(folder) == [path]
    with Image.open(folder / path) as image:
        assert image.mode == "L" and np.asarray(image).tolist() == pixels


def test_the_input_of_a_reading_is_filed_as_it_was_answered(client, folder):
    reading = client.post(
        "/api/predict",
        content=drawing(4, size=150, at=(140, 140)),
        headers={"Content-Type": "image/png"},
    ).json()
    response = post(client, {"input": reading["input"], "label": reading["readings"][0]["digit"]})
    assert response.json()["path"] == f"4/{name_of(reading['input'])}"


def test_the_same_drawing_twice_is_one_file_and_another_label_moves_it(client, folder):
    pixels = picture(1)
    post(client, {"input": pixels, "label": 2})
    again = post(client, {"input": pixels, "label": 2}).json()
    assert again["outcome"] == "already collected" and files(folder) == [f"2/{name_of(pixels)}"]
    moved = post(client, {"input": pixels, "label": 3}).json()
    assert moved == {
        "outcome": "relabelled",
        "path": f"3/{name_of(pixels)}",
        "label": 3,
        "relabelled_from": 2,
    }
    assert files(folder) == [f"3/{name_of(pixels)}"]


@pytest.mark.parametrize("label", [0, 9])
def test_both_ends_of_the_digits_are_labels(client, folder, label):
    assert post(client, {"input": picture(2), "label": label}).status_code == 200
    assert files(folder) == [f"{label}/{name_of(picture(2))}"]


@pytest.mark.parametrize("value", [0, 255])
def test_both_ends_of_a_pixel_are_pixels(client, value):
    assert post(client, {"input": [[value] * 28] * 28, "label": 1}).status_code == 200


def with_pixel(value: object) -> list[list[object]]:
    pixels: list[list[object]] = picture(3)
    pixels[5][6] = value
    return pixels


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"input": picture(3), "label": -1}, "label must be a digit 0-9, got -1"),
        ({"input": picture(3), "label": 10}, "label must be a digit 0-9, got 10"),
        ({"input": picture(3), "label": "7"}, "label must be a digit 0-9, got '7'"),
        ({"input": picture(3), "label": 7.0}, "label must be a digit 0-9, got 7.0"),
        ({"input": picture(3), "label": True}, "label must be a digit 0-9, got True"),
        ({"input": picture(3), "label": None}, "label must be a digit 0-9, got None"),
        ({"input": with_pixel(256), "label": 1}, "input: expected"),
        ({"input": with_pixel(-1), "label": 1}, "input: expected"),
        ({"input": with_pixel(1.5), "label": 1}, "input: expected"),
        ({"input": with_pixel(True), "label": 1}, "input: expected"),
        ({"input": picture(3)[:27], "label": 1}, "input: expected"),
        ({"input": [*picture(3)[:27], [0] * 29], "label": 1}, "input: expected"),
        ({"input": "pixels", "label": 1}, "input: expected"),
        ({"input": picture(3)}, "expected {"),
        ({"input": picture(3), "label": 1, "name": "x"}, "expected {"),
        ([picture(3), 1], "expected {"),
    ],
    ids=[
        *("label-" + name for name in ("-1", "10", "text", "float", "bool", "null")),
        *("pixel-" + name for name in ("256", "-1", "float", "bool")),
        *("input-" + name for name in ("27-rows", "29-columns", "text")),
        *("body-" + name for name in ("no-label", "another-key", "a-list")),
    ],
)
def test_a_bad_label_or_picture_is_a_422_and_nothing_is_written(client, folder, document, message):
    response = post(client, document)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error.startswith(message) and "\n" not in error
    assert files(folder) == []


@pytest.mark.parametrize(
    ("body", "content_type", "status", "message"),
    [
        (b"{not json", "application/json", 400, "the request body is not JSON"),
        (b"[" * 3_000 + b"]" * 3_000, "application/json", 400, "the request body is not JSON"),
        (b'{"input": [], "label": 1}', "text/plain", 415, "expected JSON"),
        (b'{"input": [], "label": 1}', None, 415, "expected JSON"),
    ],
    ids=["not-json", "too-deep", "text", "no-content-type"],
)
def test_a_body_that_is_no_json_is_refused(client, folder, body, content_type, status, message):
    headers = {**SAME_ORIGIN, **({"Content-Type": content_type} if content_type else {})}
    response = client.post("/api/collect", content=body, headers=headers)
    assert response.status_code == status
    assert response.json()["error"].startswith(message)
    assert files(folder) == []


@pytest.mark.parametrize(("size", "status"), [(8_000, 200), (8_001, 413)])
def test_a_body_of_up_to_max_collect_bytes_is_read(client, size, status):
    body = json.dumps({"input": picture(4), "label": 5}).encode()
    response = client.post(
        "/api/collect",
        content=body + b" " * (size - len(body)),  # JSON may end in spaces
        headers={"Content-Type": "application/json", **SAME_ORIGIN},
    )
    assert response.status_code == status, response.text
    if status == 413:
        assert response.json() == {"error": "JSON too large: over 8,000 bytes"}


def test_the_count_bound_admits_the_last_drawing_and_refuses_the_next(client, folder, monkeypatch):
    monkeypatch.setattr(collection, "MAX_DRAWINGS", 2)
    for seed in (10, 11):
        assert post(client, {"input": picture(seed), "label": 1}).status_code == 200
    response = post(client, {"input": picture(12), "label": 1})
    assert response.status_code == 507
    assert response.json() == {
        "error": f"{folder}: collection full (2 drawings, the limit)",
    }
    # A drawing already filed is no growth: still answered.
    assert post(client, {"input": picture(10), "label": 1}).json()["outcome"] == "already collected"
    assert len(files(folder)) == 2


def png_size(pixels: list[list[int]]) -> int:
    buffer = io.BytesIO()
    Image.fromarray(np.array(pixels, np.uint8), mode="L").save(buffer, format="PNG")
    return len(buffer.getvalue())


def test_the_size_bound_admits_exactly_the_limit_and_refuses_a_byte_more(
    client, folder, monkeypatch
):
    limit = png_size(picture(20)) + png_size(picture(21))
    monkeypatch.setattr(collection, "MAX_BYTES", limit)
    for seed in (20, 21):
        assert post(client, {"input": picture(seed), "label": 1}).status_code == 200
    response = post(client, {"input": picture(22), "label": 1})
    assert response.status_code == 507
    assert response.json()["error"].endswith(f"the limit is {limit:,})")


def test_a_read_only_folder_is_a_507_naming_it_and_leaves_nothing(client, folder, monkeypatch):
    with read_only(folder / "3", monkeypatch):
        response = post(client, {"input": picture(5), "label": 3})
    assert response.status_code == 507
    assert response.json() == {
        "error": f"{folder / '3'}: cannot save the drawing: Permission denied"
    }
    assert files(folder) == []


def test_a_full_disk_is_a_507_that_says_so(client, folder, monkeypatch):
    def no_space(self, data):
        raise OSError(28, "No space left on device", str(self))

    monkeypatch.setattr(Path, "write_bytes", no_space)
    response = post(client, {"input": picture(6), "label": 3})
    assert response.status_code == 507
    assert response.json()["error"].endswith("cannot save the drawing: no space left on the disk")
    assert files(folder) == []


def test_the_drawing_is_written_in_a_worker_thread_not_the_event_loop(client, monkeypatch):
    threads = []
    save_drawing = collection.save_drawing

    def watched(*args):
        try:
            asyncio.get_running_loop()
            threads.append("the event loop")
        except RuntimeError:  # no loop runs in this thread
            threads.append("a worker")
        return save_drawing(*args)

    monkeypatch.setattr(collection, "save_drawing", watched)
    assert post(client, {"input": picture(7), "label": 8}).status_code == 200
    assert threads == ["a worker"]


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "no Origin header"),
        ({"Origin": "http://evil.example"}, "Origin 'http://evil.example' is not this server's"),
        ({"Origin": "http://127.0.0.1:9999"}, "Origin 'http://127.0.0.1:9999' is not this"),
        ({"Origin": "https://127.0.0.1:8000"}, "Origin 'https://127.0.0.1:8000' is not this"),
        ({"Origin": "null"}, "Origin 'null' is not this server's"),
        ({"Origin": LOCAL, "Sec-Fetch-Site": "cross-site"}, "Sec-Fetch-Site 'cross-site'"),
        ({"Origin": LOCAL, "Sec-Fetch-Site": "same-site"}, "Sec-Fetch-Site 'same-site'"),
        ({"Origin": LOCAL, "Sec-Fetch-Site": "none"}, "Sec-Fetch-Site 'none'"),
    ],
    ids=[
        "no-origin",
        "other-site",
        "other-port",
        "other-scheme",
        "opaque",
        "cross-site",
        "same-site",
        "typed",
    ],
)
def test_a_post_from_elsewhere_than_the_page_is_a_403_and_nothing_is_written(
    client, folder, headers, message
):
    response = post(client, {"input": picture(8), "label": 1}, headers=headers)
    assert response.status_code == 403
    assert response.json()["error"].startswith(message)
    assert files(folder) == []


@pytest.mark.parametrize(
    "headers", [{"Origin": LOCAL}, {"Origin": "HTTP://127.0.0.1:8000"}, SAME_ORIGIN]
)
def test_the_pages_own_origin_may_collect(client, headers):
    assert post(client, {"input": picture(9), "label": 1}, headers=headers).status_code == 200


def test_a_host_naming_another_server_is_refused_before_the_origin(client, folder):
    # A page elsewhere whose own name resolves to 127.0.0.1 is same-origin to itself.
    headers = {"Host": "evil.example", "Origin": "http://evil.example"}
    assert post(client, {"input": picture(8), "label": 1}, headers=headers).status_code == 400
    assert files(folder) == []


def test_collecting_is_off_by_default_a_404_and_the_health_says_so(glyph_model, client):
    with TestClient(create_app([glyphs(glyph_model)], LIMITS), base_url=LOCAL) as off:
        response = post(off, {"input": picture(8), "label": 1})
        assert response.status_code == 404
        assert response.json() == {
            "error": "collecting is off: start the server with --collect DIR"
        }
        assert off.get("/api/health").json()["collecting"] is False
    assert client.get("/api/health").json()["collecting"] is True


def test_collecting_answers_post_only(client):
    response = client.get("/api/collect")
    assert response.status_code == 405 and response.headers["allow"] == "POST"


# --- the command ---------------------------------------------------------------------------------


def test_the_command_collects_only_when_given_a_folder():
    assert build_parser().parse_args([]).collect is None
    assert build_parser().parse_args(["--collect", "drawings"]).collect == Path("drawings")


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda path: path.write_text("a file"), "--collect {path}: not a folder"),
        (
            lambda path: (path.mkdir(), (path / "notes.txt").write_text("")),
            "{path}/notes.txt: not a digit's folder (expected 0 to 9 only)",
        ),
    ],
    ids=["a-file", "a-stray-file"],
)
def test_a_folder_that_cannot_be_a_collection_is_one_line_and_status_1(tmp_path, make, message):
    path = tmp_path / "drawings"
    make(path)
    model = tmp_path / "model.keras"
    model.write_bytes(b"never loaded: the folder is checked first")
    command = [sys.executable, "-m", "mnist_pipeline.web", "--model", str(model), "--port", "0"]
    result = subprocess.run(
        [*command, "--collect", str(path)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 1
    assert result.stderr.splitlines() == [f"mnist-web: error: {message.format(path=path)}"]
