"""The web page in headless Chromium, served by the real command for the pipeline's model.

Drawn with the mouse, which Chromium delivers to the page as pointer events, as a person draws.
"""

import json
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from mnist_pipeline.plumbing import paths
from tests.support.browser import page_on
from tests.support.launch import serving
from tests.support.webpage import ANSWER_TIMEOUT_MS, ONE, SEVEN, draw, shown_digit, shown_digits

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(
    not (REPO / paths.SERVING_MODEL_FILE).is_file(),
    reason="needs the pipeline's trained model (`make pipeline`)",
)


@pytest.fixture(scope="module")
def server():
    with serving(REPO / paths.SERVING_MODEL_FILE) as running:
        yield running


@pytest.fixture
def page(browser, server):
    with page_on(browser, server) as page:
        yield page


def test_a_one_drawn_in_one_stroke_reads_1(page):
    draw(page, ONE)
    assert shown_digit(page, strokes=1) == "1"
    assert page.outside == [] and page.console_errors == []


def test_a_seven_drawn_in_two_strokes_reads_7(page):
    draw(page, SEVEN[:1])
    shown_digit(page, strokes=1)  # the first stroke alone gets its own answer
    draw(page, SEVEN[1:])
    assert shown_digit(page, strokes=2) == "7"
    # The answer in full: ten bars, the top one the digit's, and the picture the network saw.
    bars = page.locator(".reading .bars li")
    assert bars.count() == 10
    assert bars.nth(7).get_attribute("class") == "top"
    assert page.locator(".reading .summary").inner_text().endswith("%)")
    seen_ink = page.evaluate(
        "() => document.getElementById('seen').getContext('2d')"
        ".getImageData(0, 0, 28, 28).data.filter((_, i) => i % 4 === 0).reduce((a, b) => a + b)"
    )
    assert seen_ink > 0
    assert page.outside == [] and page.console_errors == []


def test_clear_by_keyboard_empties_the_drawing_and_the_answer(page):
    draw(page, ONE)
    shown_digit(page, strokes=1)
    page.keyboard.press("Tab")  # the first stop is the Clear button
    assert page.evaluate("document.activeElement.id") == "clear"
    page.keyboard.press("Enter")
    assert page.locator("#result").get_attribute("data-strokes") == "0"
    assert page.locator(".reading .digit").inner_text() == ""
    ink = page.evaluate(
        "() => { const pad = document.getElementById('pad');"
        " return pad.getContext('2d').getImageData(0, 0, pad.width, pad.height).data"
        ".filter(value => value !== 255).length; }"
    )
    assert ink == 0
    page.keyboard.press("Tab")  # then the result, for a screen reader to read out
    assert page.evaluate("document.activeElement.id") == "result"
    assert page.locator(".reading .answer").get_attribute("aria-live") == "polite"
    draw(page, ONE)  # a fresh start: this is the first stroke again
    assert shown_digit(page, strokes=1) == "1"


def test_two_models_read_each_drawing_side_by_side_each_named(browser):
    # The LiteRT export and the Keras model it came from: two files, the same network.
    exported, keras_model = REPO / paths.SERVING_MODEL_FILE, REPO / paths.MODEL_FILE
    with serving(exported, keras_model) as server, page_on(browser, server) as page:
        draw(page, SEVEN)
        assert shown_digits(page, strokes=2) == ["7", "7"]
        first, second = page.locator(".reading .model").all_inner_texts()
        accuracy = json.loads((REPO / paths.METRICS_FILE).read_text())["test"]["accuracy"]
        assert first.startswith(str(exported)) and first.endswith(
            f": test accuracy {100 * accuracy:.1f}%"
        )
        assert second.startswith(str(keras_model)) and "accuracy" not in second
        assert page.locator(".reading .bars li.top").count() == 2
        assert page.outside == [] and page.console_errors == []


# --- while an answer is on its way, and when the model is unsure ---------------------------------


class Held:
    """Requests to the page's API held back, each answered once the test lets it through."""

    def __init__(self, page, *paths: str) -> None:
        self.page, self.routes = page, []
        for path in paths:
            page.route(f"**/api/{path}", self.hold)

    def hold(self, route) -> None:  # Playwright takes no builtin (list.append) as a handler
        self.routes.append(route)

    def release(self, path: str) -> None:
        """Let the held request to `path` through, waiting for it to be made if need be."""
        for _ in range(ANSWER_TIMEOUT_MS // 50):
            if waiting := [r for r in self.routes if r.request.url.endswith(f"/api/{path}")]:
                self.routes.remove(waiting[0])
                waiting[0].continue_()
                return
            self.page.wait_for_timeout(50)  # the browser's events are handled meanwhile
        raise AssertionError(f"the page asked nothing of /api/{path}")


def test_while_a_reading_is_on_its_way_the_page_says_reading(page):
    # The page as loaded, its health answered: none of its requests is held below.
    expect(page.locator(".reading .summary")).to_have_text("Nothing drawn yet.")
    held = Held(page, "health", "predict")
    page.reload()
    draw(page, ONE)  # before the page knows its models: no panel yet
    held.release("health")
    # The panel made once the models are known says the drawing is being read.
    expect(page.locator(".reading .summary")).to_have_text("Reading…")
    expect(page.locator(".reading .answer")).to_have_class(re.compile(r"\bpending\b"))
    held.release("predict")
    assert shown_digit(page, strokes=1) == "1"
    expect(page.locator(".reading .summary")).to_have_text(re.compile(r"% sure; runner-up"))
    expect(page.locator(".reading .answer")).not_to_have_class(re.compile(r"\bpending\b"))
    # The next stroke: its answer is awaited beside the last digit, never "Nothing drawn yet".
    draw(page, [[(0.3, 0.5), (0.7, 0.5)]])
    expect(page.locator(".reading .summary")).to_have_text("Reading…")
    expect(page.locator(".reading .digit")).to_have_text("1")
    held.release("predict")
    shown_digit(page, strokes=2)
    expect(page.locator(".reading .summary")).not_to_have_text("Reading…")


def answering_unsure(unsure: bool):
    """A route handler: the server's own answer, with each reading's `unsure` set so."""

    def answer(route):
        response = route.fetch()
        body = response.json()
        for reading in body["readings"]:
            reading["unsure"] = unsure
        route.fulfill(response=response, json=body)

    return answer


@pytest.mark.parametrize("unsure", [True, False])
def test_an_unsure_reading_says_not_sure_this_is_a_digit(page, unsure):
    page.route("**/api/predict", answering_unsure(unsure))
    draw(page, ONE)
    assert shown_digit(page, strokes=1) == "1"  # the digit is shown either way
    note = page.locator(".reading .unsure")
    assert note.is_visible() == unsure
    if unsure:
        assert note.inner_text() == "Not sure this is a digit."
    page.get_by_role("button", name="Clear").click()
    assert note.is_hidden()


def test_a_refused_reading_is_shown_as_the_servers_line_and_the_next_one_reads(page):
    busy = "server busy: 16 requests are being read; retry in a second"
    page.route("**/api/predict", lambda route: route.fulfill(status=503, json={"error": busy}))
    draw(page, ONE)
    page.locator('#result[data-strokes="1"]').wait_for(timeout=ANSWER_TIMEOUT_MS)
    assert page.locator(".reading .digit").inner_text() == "?"
    assert page.locator(".reading .summary").inner_text() == f"Could not read the drawing: {busy}"
    assert "error" in page.locator(".reading .answer").get_attribute("class")
    page.unroute("**/api/predict")
    draw(page, SEVEN)
    assert shown_digit(page, strokes=3) != "?"
    assert "error" not in page.locator(".reading .answer").get_attribute("class")
