"""Turn a picture of one digit into a 28x28 uint8 image as MNIST made them. Pillow and numpy only.

MNIST's recipe (LeCun et al.): the digit is light on a dark background, its bounding box scaled to
fit 20x20 keeping the aspect ratio, then placed in a 28x28 field with its centre of mass at the
centre. A network trained on MNIST only knows digits in that form, so a photo or drawing has to
be brought to it first.
"""

import struct
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps

from mnist_pipeline.errors import PipelineError
from mnist_pipeline.files import load_array

FIELD_SIZE = 28  # MNIST's image side
BOX_SIZE = 20  # the digit's longer side in that image
# After stretching the ink to [0, 1]: weaker pixels are paper texture or compression noise.
NOISE_LEVEL = 0.2
# An image whose ink is within this (of full scale) of its background holds no digit.
MIN_CONTRAST = 0.15
# Pillow's decoders raise any of these for a damaged or unsupported file.
DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error)


class NoDigitError(ValueError):
    """The picture or array holds no usable digit; read_digit adds the file name."""


def read_digit(source: Path | BinaryIO, name: str | None = None) -> np.ndarray:
    """An image file, or a `.npy` array, -> uint8 (28, 28), MNIST's form of the digit.

    `source` is a path or an open binary file (an upload, say); `name` names it in errors
    (default: the path). Images are prepared as MNIST's digits were (mnist_digit). A `.npy` path
    is taken to hold a digit already in MNIST's form and is only checked (digit_from_array).
    """
    name = name or str(source)
    try:
        if isinstance(source, Path) and source.suffix.lower() == ".npy":
            return digit_from_array(load_array(source))
        return mnist_digit(to_grayscale(open_image(source, name)))
    except NoDigitError as error:
        raise PipelineError(f"{name}: {error}") from None


def open_image(source: Path | BinaryIO, name: str | None = None) -> Image.Image:
    """Open and fully decode an image, upright as its EXIF orientation says (phone photos)."""
    path = name or str(source)
    try:
        with Image.open(source) as image:
            # Image.open reads only the header: load() decodes, so a truncated file fails here.
            image.load()
            return ImageOps.exif_transpose(image)
    except FileNotFoundError:
        raise PipelineError(f"{path}: not found") from None
    except Image.UnidentifiedImageError:
        raise PipelineError(f"{path}: not an image file (or a format Pillow cannot read)") from None
    except Image.DecompressionBombError as error:
        raise PipelineError(f"{path}: image too large ({error})") from None
    except DECODE_ERRORS as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else error
        raise PipelineError(f"{path}: cannot read image: {reason}") from None


def digit_from_array(array: np.ndarray) -> np.ndarray:
    """A digit in MNIST's form -> uint8 (28, 28).

    Accepted: 28x28 (or 784) integers in 0-255, as data/raw and data/prepared store them, or
    floats in [0, 1]. Light digit on black, already centred: no preparation is applied.
    """
    digit = np.squeeze(array)
    if digit.shape not in ((FIELD_SIZE, FIELD_SIZE), (FIELD_SIZE * FIELD_SIZE,)):
        raise NoDigitError(f"expected one 28x28 digit, got an array of shape {array.shape}")
    if np.issubdtype(digit.dtype, np.integer):
        if digit.min() < 0 or digit.max() > 255:
            raise NoDigitError("integer pixels must be within 0-255")
        return digit.astype(np.uint8).reshape(FIELD_SIZE, FIELD_SIZE)
    if np.issubdtype(digit.dtype, np.floating):
        if not np.all((digit >= 0) & (digit <= 1)):  # also false for NaN
            raise NoDigitError("float pixels must be within [0, 1]")
        return np.rint(digit * 255).astype(np.uint8).reshape(FIELD_SIZE, FIELD_SIZE)
    raise NoDigitError(f"expected integer or float pixels, got {digit.dtype}")


def to_grayscale(image: Image.Image) -> np.ndarray:
    """Any Pillow image -> float32 (H, W) luminance in [0, 255].

    Transparent pixels show the background that contrasts with the opaque ones: a digit drawn
    only in the alpha channel stays visible whether its ink is dark or light.
    """
    if image.mode.startswith("I;16"):  # 16-bit grayscale; convert("L") would clip it
        return np.asarray(image, dtype=np.float32) / 257
    if image.has_transparency_data:
        rgba = image.convert("RGBA")
        alpha = np.asarray(rgba.getchannel("A"), dtype=np.float32) / 255
        luminance = np.asarray(rgba.convert("L"), dtype=np.float32)
        opaque_mean = (luminance * alpha).sum() / max(alpha.sum(), 1e-6)
        background = 255.0 if opaque_mean < 128 else 0.0
        return luminance * alpha + background * (1 - alpha)
    return np.asarray(image.convert("L"), dtype=np.float32)


def border(gray: np.ndarray) -> np.ndarray:
    """The outermost ring of pixels: mostly background when the digit has a margin."""
    return np.concatenate([gray[0], gray[-1], gray[1:-1, 0], gray[1:-1, -1]])


def is_dark_on_light(gray: np.ndarray) -> bool:
    """Whether the background is light: the border's median, robust to a stroke at the edge."""
    return bool(np.median(border(gray)) > 127.5)


def ink_intensity(gray: np.ndarray) -> np.ndarray:
    """Grayscale -> float32 ink in [0, 1] on a 0 background, light digit on dark as in MNIST.

    The background level becomes 0 and the strongest ink 1, so pencil on grey paper looks like
    MNIST's full-contrast strokes; what stays below NOISE_LEVEL is set to 0.
    """
    if gray.size == 0:
        raise NoDigitError("empty image (no pixels)")
    ink = 255 - gray if is_dark_on_light(gray) else gray
    background, peak = float(np.median(border(ink))), float(ink.max())
    if peak - background < MIN_CONTRAST * 255:
        raise NoDigitError("blank image: no digit found")
    ink = np.clip((ink - background) / (peak - background), 0, 1).astype(np.float32)
    ink[ink < NOISE_LEVEL] = 0
    return ink


def ink_bbox(ink: np.ndarray) -> tuple[slice, slice]:
    """Rows and columns of the smallest box holding every non-zero pixel."""
    rows, columns = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    if rows.size == 0:
        raise NoDigitError("blank image: no digit found")
    return slice(rows[0], rows[-1] + 1), slice(columns[0], columns[-1] + 1)


def fit_box(ink: np.ndarray, size: int = BOX_SIZE) -> np.ndarray:
    """Resize so the longer side is `size`, keeping the aspect ratio; peak ink stays 1."""
    height, width = ink.shape
    scale = size / max(height, width)
    new_size = (max(1, round(width * scale)), max(1, round(height * scale)))
    # Lanczos on floats: a sharp, area-aware resize either way, without uint8 clipping midway.
    resized = np.asarray(
        Image.fromarray(ink.astype(np.float32)).resize(new_size, Image.Resampling.LANCZOS)
    )
    resized = np.clip(resized, 0, None)
    # Shrinking a thin stroke dims it: restore full contrast, as MNIST's strokes have.
    return resized / resized.max() if resized.max() > 0 else resized


def centre_of_mass(weights: np.ndarray) -> tuple[float, float]:
    """(row, column) of the intensity-weighted mean pixel, pixel centres at whole numbers."""
    rows, columns = np.indices(weights.shape)
    total = weights.sum()
    return float((rows * weights).sum() / total), float((columns * weights).sum() / total)


def centre_in_field(digit: np.ndarray, size: int = FIELD_SIZE) -> np.ndarray:
    """Paste `digit` into a size x size field so its centre of mass lands on the field's centre.

    The shift is whole pixels; it stops at the field's edge rather than cut off any ink.
    """
    # Pixel (14, 14), not the geometric 13.5: MNIST's digits have their centre of mass there.
    centre = size / 2
    field = np.zeros((size, size), dtype=np.float32)
    row, column = centre_of_mass(digit)
    height, width = digit.shape
    top = min(max(int(np.floor(centre - row + 0.5)), 0), size - height)
    left = min(max(int(np.floor(centre - column + 0.5)), 0), size - width)
    field[top : top + height, left : left + width] = digit
    return field


def mnist_digit(gray: np.ndarray) -> np.ndarray:
    """Grayscale picture of one digit (any size, any polarity) -> uint8 (28, 28) as in MNIST."""
    ink = ink_intensity(gray)
    digit = fit_box(ink[ink_bbox(ink)])
    return np.rint(centre_in_field(digit) * 255).astype(np.uint8)
