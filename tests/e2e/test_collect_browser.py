"""Collecting drawings through the page in headless Chromium, served by the real command
(`mnist-web --collect DIR`) for the pipeline's model: draw, say what the digit is, and the file
appears in the collection; and the refusals, sent to the live server over HTTP."""

import json
from pathlib import Path
from urllib.error import HTTPError
from urllib.request import Request, urlopen

import pytest

from mnist_pipeline.plumbing import paths
from tests.support.browser import page_on
from tests.support.launch import serving
from tests.support.webpage import (
    ONE,
    SEVEN,
    draw,
    draw_and_read,
    file_with,
    name_of,
    shown_digit,
)

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(
    not (REPO / paths.SERVING_MODEL_FILE).is_file(),
    reason="needs the pipeline's trained model (`make pipeline`)",
)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("collection") / "drawings"


@pytest.fixture(scope="module")
def server(folder):
    with serving(REPO / paths.SERVING_MODEL_FILE, options=["--collect", str(folder)]) as running:
        yield running


def files(folder: Path) -> list[str]:
    """Every file under `folder`, a temporary one too, by its path in it."""
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def test_a_corrected_drawing_is_filed_under_the_digit_given_and_right_files_the_one_read(
    browser, server, folder
):
    before = files(folder)  # what the other tests filed, if they ran first

    def new_files() -> list[str]:
        return [path for path in files(folder) if path not in before]

    with page_on(browser, server) as page:
        digit, answer = draw_and_read(page, ONE)
        assert digit == "1"
        name = name_of(answer["input"])
        assert page.locator("#collect").is_visible()
        # A misreading corrected: "It is a 4" files it under 4/.
        assert file_with(page, "It is a 4") == f"Saved as a 4: 4/{name}"
        assert new_files() == [f"4/{name}"]
        # Changed one's mind: "Right" moves it under the digit read.
        assert file_with(page, "Right") == f"Saved as a 1 (was a 4): 1/{name}"
        assert new_files() == [f"1/{name}"]
        # Again: nothing new.
        assert file_with(page, "Right") == f"Already saved as a 1: 1/{name}"
        assert new_files() == [f"1/{name}"]
        # A new stroke takes the buttons away until its own reading is shown.
        page.get_by_role("button", name="Clear").click()
        assert not page.locator("#collect").is_visible()
        assert page.outside == [] and page.console_errors == []


def test_a_refusal_is_shown_as_the_servers_one_line(browser, server, folder):
    refusal = f"{folder}: collection full (10,000 drawings, the limit)"
    with page_on(browser, server) as page:
        page.route(
            "**/api/collect", lambda route: route.fulfill(status=507, json={"error": refusal})
        )
        draw(page, ONE)
        shown_digit(page, strokes=1)
        assert file_with(page, "Right") == f"Not saved: {refusal}"
        assert page.locator("#collected").get_attribute("data-outcome") == "refused"


def test_without_collect_the_page_shows_no_collect_controls(browser):
    with serving(REPO / paths.SERVING_MODEL_FILE) as server, page_on(browser, server) as page:
        draw(page, SEVEN)
        assert shown_digit(page, strokes=2) == "7"
        assert not page.locator("#collect").is_visible()
        assert not page.get_by_role("button", name="Right").is_visible()
        assert not page.get_by_role("button", name="It is a 7").is_visible()


# --- refusals, over HTTP at the live server ------------------------------------------------------


def post(server, body: bytes, origin: str | None = "own") -> tuple[int, dict]:
    """POST /api/collect with a JSON body, from the page's own origin unless told otherwise."""
    headers = {"Content-Type": "application/json"}
    if origin is not None:
        headers["Origin"] = server.url.rstrip("/") if origin == "own" else origin
    request = Request(server.url + "api/collect", data=body, headers=headers, method="POST")
    try:
        with urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except HTTPError as error:
        with error:
            return error.code, json.loads(error.read())


def document(seed: int, label: object = 3) -> bytes:
    pixels = [[(seed * 31 + 7 * row + col) % 256 for col in range(28)] for row in range(28)]
    return json.dumps({"input": pixels, "label": label}).encode()


@pytest.mark.parametrize(
    ("body", "origin", "status", "message"),
    [
        (document(1, label=10), "own", 422, "label must be a digit 0-9, got 10"),
        (document(1, label="3"), "own", 422, "label must be a digit 0-9, got '3'"),
        (document(1) + b" " * 16_384, "own", 413, "JSON too large: over 16,384 bytes"),
        (document(1), "http://evil.example", 403, "Origin 'http://evil.example' is not"),
        (document(1), None, 403, "no Origin header"),
    ],
    ids=["label-10", "label-text", "oversized", "cross-origin", "no-origin"],
)
def test_bad_posts_are_refused_in_one_line_and_nothing_is_written(
    server, folder, body, origin, status, message
):
    before = files(folder)
    code, answer = post(server, body, origin)
    assert code == status
    assert answer["error"].startswith(message) and "\n" not in answer["error"]
    assert files(folder) == before


def test_a_repeated_upload_is_one_file(server, folder):
    first, second = post(server, document(2)), post(server, document(2))
    assert first[0] == second[0] == 200
    assert (first[1]["outcome"], second[1]["outcome"]) == ("added", "already collected")
    assert files(folder).count(first[1]["path"]) == 1


def test_a_folder_that_cannot_be_written_is_a_507_and_the_server_carries_on(server, folder):
    # A file where a digit's folder should be: no drawing can be filed until it is gone (a
    # read-only folder is refused the same way; tests/web/test_collect.py simulates one, as root
    # writes in any).
    before = files(folder)
    folder.mkdir(exist_ok=True)  # made by the first drawing filed, if any was
    (folder / "5").write_text("in the way")
    try:
        code, answer = post(server, document(3, label=5))
        assert code == 507
        assert answer == {"error": f"{folder / '5'}: a file where the digit's folder belongs"}
    finally:
        (folder / "5").unlink()
    assert files(folder) == before
    assert post(server, document(3, label=5))[0] == 200
    assert not [line for line in server.log if "Traceback" in line or "ERROR" in line]
