"""Drawing on the web page in a real browser, as a person does: pointer down, moves, pointer up.

Used by the browser tests, and run as a script it makes the README's screenshot the same way:
`make screenshot` (or `PYTHONPATH=. python tests/support/webpage.py docs/web-page.png`); with
`--collect DIR`, docs/web.md's of the page collecting.
"""

import argparse
import hashlib
from pathlib import Path

from mnist_pipeline.plumbing import paths
from mnist_pipeline.plumbing.files import atomic_file
from tests.support.browser import CHROMIUM, FLAGS, INSTALL_HINT
from tests.support.launch import serving

# Strokes as lists of points, in fractions of the canvas' width and height.
ONE = [[(0.53, 0.15), (0.47, 0.85)]]
SEVEN = [[(0.25, 0.2), (0.75, 0.2)], [(0.75, 0.2), (0.42, 0.85)]]
MOVES_PER_SEGMENT = 12  # pointermove events between two points, as a hand makes them
ANSWER_TIMEOUT_MS = 60_000  # generous: the machine may be busy; the wait ends at the answer


def draw(page, strokes: list[list[tuple[float, float]]], moves: int = MOVES_PER_SEGMENT) -> None:
    """Draw each stroke with the mouse, `moves` pointer moves from each of its points to the
    next: Chromium turns them into pointer events on the canvas."""
    box = page.locator("#pad").bounding_box()
    for stroke in strokes:
        (x, y), *rest = [
            (box["x"] + fx * box["width"], box["y"] + fy * box["height"]) for fx, fy in stroke
        ]
        page.mouse.move(x, y)
        page.mouse.down()
        for x, y in rest:
            page.mouse.move(x, y, steps=moves)
        page.mouse.up()


def shown_digits(page, strokes: int) -> list[str]:
    """The digit each model's panel shows once the answer covers `strokes` strokes."""
    page.locator(f'#result[data-strokes="{strokes}"]').wait_for(timeout=ANSWER_TIMEOUT_MS)
    return page.locator(".reading .digit").all_inner_texts()


def shown_digit(page, strokes: int) -> str:
    """The digit the page shows, with one model, once its answer covers `strokes` strokes."""
    [digit] = shown_digits(page, strokes)
    return digit


def name_of(pixels: list[list[int]]) -> str:
    """The file name the layout gives a drawing: 16 hex digits of the SHA-256 of its bytes."""
    return hashlib.sha256(bytes(value for row in pixels for value in row)).hexdigest()[:16] + ".png"


def draw_and_read(page, stroke) -> tuple[str, dict]:
    """Draw one stroke; the digit the page shows, and the server's answer it shows."""
    with page.expect_response(
        lambda response: response.url.endswith("/api/predict"), timeout=ANSWER_TIMEOUT_MS
    ) as answer:
        draw(page, stroke)
    return shown_digit(page, strokes=1), answer.value.json()


def file_with(page, button: str) -> str:
    """Click a collect button; the line the page then shows."""
    page.get_by_role("button", name=button, exact=True).click()
    page.locator("#collected[data-outcome]").wait_for(timeout=ANSWER_TIMEOUT_MS)
    return page.locator("#collected").inner_text()


def main() -> None:
    parser = argparse.ArgumentParser(description="Screenshot the page with a 7 drawn on it.")
    parser.add_argument("output", type=Path, help="PNG file to write")
    parser.add_argument(
        "--model", action="append", help="as mnist-web's (default: the pipeline's model)"
    )
    parser.add_argument(
        "--collect", type=Path, metavar="DIR", help="as mnist-web's; the 7 is then filed (Right)"
    )
    args = parser.parse_args()
    if CHROMIUM is None:
        parser.exit(1, f"{parser.prog}: error: {INSTALL_HINT}\n")
    from playwright.sync_api import sync_playwright

    models = args.model or [str(paths.SERVING_MODEL_FILE)]  # as the command names it
    options = ["--collect", str(args.collect)] if args.collect else []
    with serving(*models, options=options) as server, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 900, "height": 600})
        page.goto(server.url)
        draw(page, SEVEN)
        print(f"the page reads {shown_digits(page, strokes=len(SEVEN))}")
        if args.collect:
            page.get_by_role("button", name="Right", exact=True).click()
            page.locator("#collected[data-outcome]").wait_for(timeout=ANSWER_TIMEOUT_MS)
            print(page.locator("#collected").inner_text())
        image = page.screenshot(full_page=True)
        browser.close()
    with atomic_file(args.output) as tmp:
        tmp.write_bytes(image)


if __name__ == "__main__":
    main()
