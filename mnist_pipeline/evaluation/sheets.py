"""Picture sheets: digits in a grid, each captioned (the evaluate stage's misread digits,
compare's disagreements). Pillow and numpy: no TensorFlow."""

import math

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from mnist_pipeline.data.dataset import IMAGE_SHAPE


def draw_mistakes(
    pixels: np.ndarray,
    actual: np.ndarray,
    probabilities: np.ndarray,
    indices: np.ndarray,
    zoom: int = 4,
) -> Image.Image:
    """The given images (normalized pixels, (N, 784)), each captioned
    `true -> predicted (probability)`."""
    guesses = probabilities[indices].argmax(axis=1)
    captions = [
        f"{actual[index]} -> {guess} ({probabilities[index, guess]:.2f})"
        for index, guess in zip(indices, guesses, strict=True)
    ]
    return draw_digits(pixels[indices], captions, empty="no mistakes", zoom=zoom)


def draw_digits(pixels: np.ndarray, captions: list[str], empty: str, zoom: int = 4) -> Image.Image:
    """A grid of digits (normalized pixels, (N, 784)), each with its caption below it; `empty`
    is written on the sheet when there are none."""
    font = ImageFont.load_default(size=14)
    side, caption_height, gap = IMAGE_SHAPE[0] * zoom, 20, 4
    columns = max(1, math.ceil(math.sqrt(len(captions))))
    rows = max(1, math.ceil(len(captions) / columns))
    sheet = Image.new("L", (columns * (side + gap), rows * (side + caption_height + gap)), color=64)
    draw = ImageDraw.Draw(sheet)
    if not captions:
        draw.text((4, 4), empty, fill=255, font=font)
    for position, (image, caption) in enumerate(zip(pixels, captions, strict=True)):
        left = (position % columns) * (side + gap)
        top = (position // columns) * (side + caption_height + gap)
        gray = np.rint(image.reshape(IMAGE_SHAPE) * 255).astype(np.uint8)
        digit = Image.fromarray(gray).resize((side, side), Image.Resampling.NEAREST)
        sheet.paste(digit, (left, top))
        draw.text((left + 2, top + side + 2), caption, fill=255, font=font)
    return sheet
