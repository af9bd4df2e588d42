"""Picture sheets of captioned digits (the evaluate stage's misread digits)."""

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from mnist_pipeline.data.preprocessing import normalize_pixels
from mnist_pipeline.evaluation.sheets import draw_mistakes
from tests.support.synthetic import probabilities_for


def caption_strip(sheet, position, columns, zoom):
    """The caption under the digit at `position` of a draw_mistakes sheet."""
    side, caption, gap = 28 * zoom, 20, 4
    left, top = (position % columns) * (side + gap), (position // columns) * (side + caption + gap)
    return np.asarray(sheet.crop((left, top + side, left + side, top + side + caption)))


def caption_as_drawn(text, zoom):
    """The strip draw_mistakes would make for `text`."""
    strip = Image.new("L", (28 * zoom, 20), color=64)
    ImageDraw.Draw(strip).text((2, 2), text, fill=255, font=ImageFont.load_default(size=14))
    return np.asarray(strip)


def test_draw_mistakes_makes_a_grid_of_captioned_digits(tiny_mnist):
    images, actual = tiny_mnist["x_test"], tiny_mnist["y_test"].astype(np.int64)
    probabilities = probabilities_for((actual + 1) % 10)
    indices = np.array([4, 0, 2, 1, 3])
    sheet = draw_mistakes(normalize_pixels(images), actual, probabilities, indices, zoom=2)
    assert sheet.mode == "L"
    assert sheet.size == (3 * (56 + 4), 2 * (56 + 20 + 4))
    # Each cell is its image, zoomed, in the order given.
    for position, index in enumerate(indices):
        left, top = (position % 3) * 60, (position // 3) * 80
        cell = np.asarray(sheet.crop((left, top, left + 56, top + 56)))
        np.testing.assert_array_equal(cell[::2, ::2], images[index])
    # Captions read `true -> predicted (probability)`: image 4 is a 4 read as a 5.
    assert actual[4] == 4
    np.testing.assert_array_equal(
        caption_strip(sheet, 0, 3, 2), caption_as_drawn("4 -> 5 (0.90)", 2)
    )
    assert not np.array_equal(caption_strip(sheet, 0, 3, 2), caption_as_drawn("5 -> 4 (0.90)", 2))


def test_draw_mistakes_without_mistakes_says_so(tiny_mnist):
    pixels = normalize_pixels(tiny_mnist["x_test"])
    empty = draw_mistakes(pixels, tiny_mnist["y_test"], probabilities_for([0]), np.arange(0))
    assert np.asarray(empty).max() == 255  # the white text "no mistakes" on grey
