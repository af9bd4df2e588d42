"""The starter collection, drawings/, made through the page itself: the real server
(`mnist-web --collect DIR`, for the pipeline's model) and the page in headless Chromium, drawn
on with the mouse as a person draws, each drawing labelled with the page's own buttons: "Right"
when the page reads the digit meant, "It is a D" otherwise.

    rm -rf drawings && PYTHONPATH=. python tools/draw_collection.py drawings

Each digit has a few stroke shapes (a 4 open or closed, a 1 with or without its flag, a 7 with
or without its bar), each drawn at a random size, width, slant, tilt and place on the pad, its
points shaken a little, sometimes inked twice side by side for a thicker line; the random
numbers are seeded, so the strokes are the same each run (the pixels filed are Chromium's
rendering of them). Digits are drawn until DIR holds --per-digit of each: a drawing the
collection holds already adds nothing, and a second run adds nothing.
"""

import argparse
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
from playwright.sync_api import Page, sync_playwright

from mnist_pipeline.data.dataset import NUM_CLASSES
from mnist_pipeline.plumbing import paths
from tests.support.browser import CHROMIUM, FLAGS, INSTALL_HINT
from tests.support.launch import serving
from tests.support.webpage import ANSWER_TIMEOUT_MS, draw, shown_digit

Point = tuple[float, float]
Stroke = list[Point]


ARC_STEP = 12  # degrees between the points of a curve
MOVES = 3  # pointer moves between two points of a stroke: the points are close already
MAX_TRIES = 4  # drawings per drawing wanted, before giving up on a digit (all repeats)


def arc(cx: float, cy: float, rx: float, ry: float, start: float, end: float) -> Stroke:
    """Points along an ellipse from angle `start` to `end`, degrees clockwise from 3 o'clock (y
    grows downwards, as on the canvas)."""
    count = max(2, math.ceil(abs(end - start) / ARC_STEP) + 1)
    return [
        (cx + rx * math.cos(math.radians(a)), cy + ry * math.sin(math.radians(a)))
        for a in np.linspace(start, end, count)
    ]


# Each digit's stroke shapes, in a unit box (x right, y down), as people write them.
SHAPES: dict[int, list[list[Stroke]]] = {
    0: [
        [arc(0.5, 0.5, 0.32, 0.46, -90, 275)],
        [arc(0.5, 0.5, 0.3, 0.45, -80, -440)],  # anticlockwise
        [arc(0.5, 0.5, 0.36, 0.44, -120, 250)],
    ],
    1: [
        [[(0.52, 0.03), (0.48, 0.97)]],
        [[(0.3, 0.22), (0.55, 0.03), (0.52, 0.97)]],  # with its flag
        [[(0.3, 0.22), (0.55, 0.03), (0.52, 0.97)], [(0.3, 0.97), (0.75, 0.97)]],  # and a foot
    ],
    2: [
        [[*arc(0.5, 0.3, 0.32, 0.27, 190, 380), (0.18, 0.97), (0.85, 0.97)]],
        [[*arc(0.5, 0.28, 0.3, 0.25, 200, 370), (0.5, 0.65), (0.15, 0.97), (0.9, 0.93)]],
        [
            [
                *arc(0.5, 0.3, 0.3, 0.27, 180, 390),
                (0.25, 0.9),
                *arc(0.3, 0.9, 0.08, 0.07, -90, 90),
                (0.9, 0.95),
            ]
        ],  # a loop at its foot
    ],
    3: [
        [[*arc(0.48, 0.27, 0.3, 0.24, 200, 450), *arc(0.48, 0.73, 0.33, 0.25, -90, 160)]],
        [[(0.15, 0.05), (0.8, 0.05), (0.4, 0.42), *arc(0.47, 0.7, 0.33, 0.27, -100, 160)]],
        [arc(0.5, 0.27, 0.28, 0.23, 190, 450), arc(0.5, 0.73, 0.32, 0.25, -90, 165)],
    ],
    4: [
        [[(0.6, 0.03), (0.12, 0.66), (0.88, 0.66)], [(0.65, 0.3), (0.65, 0.97)]],
        [[(0.25, 0.03), (0.18, 0.58), (0.85, 0.58)], [(0.68, 0.08), (0.66, 0.97)]],  # open
        [[(0.22, 0.05), (0.2, 0.55), (0.72, 0.55)], [(0.72, 0.05), (0.72, 0.97)]],
    ],
    5: [
        [[(0.78, 0.04), (0.3, 0.04), (0.26, 0.45), *arc(0.5, 0.68, 0.32, 0.28, -140, 150)]],
        [
            [(0.3, 0.04), (0.26, 0.45), *arc(0.5, 0.68, 0.32, 0.28, -140, 150)],
            [(0.3, 0.04), (0.8, 0.05)],
        ],
        [
            [(0.25, 0.05), (0.22, 0.44), *arc(0.48, 0.7, 0.3, 0.26, -150, 140)],
            [(0.25, 0.05), (0.82, 0.02)],
        ],
    ],
    6: [
        [[(0.72, 0.03), (0.45, 0.25), (0.28, 0.55), *arc(0.5, 0.72, 0.23, 0.24, 180, 540)]],
        [[*arc(0.8, 0.55, 0.55, 0.52, 250, 180), *arc(0.48, 0.74, 0.23, 0.22, 180, 520)]],
        [[(0.6, 0.03), (0.3, 0.5), *arc(0.5, 0.73, 0.25, 0.24, 200, 560)]],
    ],
    7: [
        [[(0.12, 0.05), (0.86, 0.05), (0.4, 0.97)]],
        [[(0.12, 0.1), (0.88, 0.05), (0.45, 0.97)], [(0.35, 0.5), (0.8, 0.5)]],  # barred
        [[(0.15, 0.18), (0.15, 0.05), (0.86, 0.05), (0.55, 0.55), (0.45, 0.97)]],
    ],
    8: [
        [arc(0.5, 0.27, 0.23, 0.23, 0, 360), arc(0.5, 0.73, 0.3, 0.26, -90, 270)],
        [
            [
                *arc(0.5, 0.27, 0.24, 0.23, 20, 270),
                *arc(0.5, 0.73, 0.27, 0.26, -90, 270)[::-1],
                *arc(0.5, 0.27, 0.24, 0.23, 270, 380),
            ]
        ],
        [arc(0.52, 0.25, 0.26, 0.22, 90, 450), arc(0.48, 0.72, 0.3, 0.27, 270, -90)],
    ],
    9: [
        [arc(0.45, 0.3, 0.27, 0.25, 0, 360), [(0.72, 0.3), (0.66, 0.97)]],
        [[*arc(0.45, 0.3, 0.27, 0.25, -20, -380), (0.7, 0.4), (0.62, 0.97)]],
        [
            [
                *arc(0.48, 0.28, 0.28, 0.24, 10, -350),
                (0.74, 0.5),
                *arc(0.5, 0.75, 0.24, 0.22, 0, 130),
            ]
        ],
    ],
}


def placed(shape: list[Stroke], rng: np.random.Generator) -> list[Stroke]:
    """A shape drawn once by a hand: its size, width, slant, tilt and place on the pad chosen at
    random, its points shaken a little; in fractions of the pad, inside it."""
    height = rng.uniform(0.45, 0.8)
    width = height * rng.uniform(0.5, 0.85)
    slant = rng.uniform(-0.3, 0.3)  # x moved by this much of y, the top to the right if > 0
    tilt = math.radians(rng.uniform(-10, 10))
    margin_x, margin_y = (1 - width) / 2 - 0.07, (1 - height) / 2 - 0.07
    cx = 0.5 + rng.uniform(-margin_x, margin_x) * 0.8
    cy = 0.5 + rng.uniform(-margin_y, margin_y) * 0.8

    def point(x: float, y: float) -> Point:
        x, y = (x - 0.5) * width + slant * (0.5 - y) * height, (y - 0.5) * height
        x, y = x * math.cos(tilt) - y * math.sin(tilt), x * math.sin(tilt) + y * math.cos(tilt)
        shaken = (cx + x, cy + y) + rng.normal(0, 0.004, 2)
        return tuple(float(v) for v in np.clip(shaken, 0.03, 0.97))

    strokes = [[point(x, y) for x, y in stroke] for stroke in shape]
    if rng.random() < 0.3:  # a thicker pen: each stroke inked again beside itself
        dx, dy = rng.uniform(0.008, 0.016, 2)
        strokes = [
            line for stroke in strokes for line in (stroke, [(x + dx, y + dy) for x, y in stroke])
        ]
    return strokes


def collected(folder: Path, digit: int) -> int:
    """How many drawings the collection holds of `digit`."""
    return len(list((folder / str(digit)).glob("*.png")))


def label_on_the_page(page: Page, strokes: list[Stroke], digit: int) -> tuple[int, str]:
    """Draw on a cleared pad, and file the drawing as `digit` with the page's buttons: the digit
    the page read, and the server's outcome ("added", "already collected")."""
    page.get_by_role("button", name="Clear").click()
    draw(page, strokes, moves=MOVES)
    read = int(shown_digit(page, strokes=len(strokes)))
    name = "Right" if read == digit else f"It is a {digit}"
    page.get_by_role("button", name=name, exact=True).click()
    outcome = page.locator("#collected[data-outcome]")
    outcome.wait_for(timeout=ANSWER_TIMEOUT_MS)
    return read, outcome.get_attribute("data-outcome")


def draw_collection(
    page: Page, folder: Path, per_digit: int, seed: int, say: Callable[[str], None]
) -> None:
    rng = np.random.default_rng(seed)
    for digit in range(NUM_CLASSES):
        drawn = right = 0
        while collected(folder, digit) < per_digit:
            if drawn == MAX_TRIES * per_digit:
                raise SystemExit(f"digit {digit}: {drawn} drawings made only repeats; giving up")
            shape = SHAPES[digit][drawn % len(SHAPES[digit])]
            read, outcome = label_on_the_page(page, placed(shape, rng), digit)
            if outcome not in ("added", "already collected"):
                raise SystemExit(f"digit {digit}: the page did not file it: {outcome}")
            drawn += 1
            right += read == digit
        say(f"{digit}: {collected(folder, digit)} drawings; {right} of {drawn} new read right")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="the collection to add to (--collect DIR)")
    parser.add_argument("--per-digit", type=int, default=25, help="drawings of each digit")
    parser.add_argument("--seed", type=int, default=0, help="of the strokes' random numbers")
    args = parser.parse_args()
    if CHROMIUM is None:
        parser.exit(1, f"{parser.prog}: error: {INSTALL_HINT}\n")

    options = ["--collect", str(args.folder.resolve())]
    with serving(paths.SERVING_MODEL_FILE, options=options) as server, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page()
        page.goto(server.url)
        draw_collection(page, args.folder, args.per_digit, args.seed, print)
        browser.close()


if __name__ == "__main__":
    main()
