"""Turn a picture of one digit into a 28x28 uint8 image as MNIST made them. Pillow and numpy only.

MNIST's recipe (LeCun et al.): the digit is light on a dark background, its bounding box scaled to
fit 20x20 keeping the aspect ratio, then placed in a 28x28 field with its centre of mass at the
centre. A network trained on MNIST only knows digits in that form, so a photo or drawing has to
be brought to it first.
"""

import math
import struct
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageFilter, ImageOps

from mnist_pipeline.plumbing.arrays import load_array
from mnist_pipeline.plumbing.errors import PipelineError

FIELD_SIZE = 28  # MNIST's image side
BOX_SIZE = 20  # the digit's longer side in that image
# An image whose darkest ink is within this fraction of the paper's brightness holds no digit.
MIN_CONTRAST = 0.15
# Ink weaker than this (of the strongest) is paper texture or sensor noise, whatever the picture.
NOISE_LEVEL = 0.2
# The paper's brightness is estimated on a grid of about PAPER_GRID cells along the longer side,
# taking the brightest cell within PAPER_WINDOW cells: wider than any pen stroke.
PAPER_GRID = 32
PAPER_WINDOW = 5
# No photo or drawing of a digit is more elongated than this: a phone's panorama is about 4:1, a
# tightly cropped 1 about 10:1. A 100000x40 strip is a few KB of PNG made to cost memory.
MAX_ASPECT_RATIO = 20
# Pictures are prepared at most this many pixels along their longer side, reduced as they are
# decoded where the format allows: a digit a tenth of the picture's height is still 100 px, five
# times the BOX_SIZE it ends up as.
WORKING_SIDE = 1000
# Pillow's decoders raise any of these for a damaged or unsupported file.
DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error)


class NoDigitError(ValueError):
    """The picture or array holds no usable digit; read_digit adds the file name."""


class ImageTooLarge(PipelineError):
    """A picture with more pixels than read_digit's bound or Pillow's, told by its header: nothing
    was decoded. `reason` says how large, without the file's name (the web server's 413)."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"{name}: image too large ({reason})")
        self.reason = reason


def read_digit(
    source: Path | BinaryIO, name: str | None = None, max_pixels: int | None = None
) -> np.ndarray:
    """An image file, or a `.npy` array, -> uint8 (28, 28), MNIST's form of the digit.

    `source` is a path or an open binary file (an upload, say); `name` names it in errors
    (default: the path). Images are prepared as MNIST's digits were (mnist_digit); one with more
    than `max_pixels` is refused before it is decoded (ImageTooLarge). A `.npy` path is taken to
    hold a digit already in MNIST's form and is only checked (digit_from_array).
    """
    name = name or str(source)
    try:
        if isinstance(source, Path) and source.suffix.lower() == ".npy":
            return digit_from_array(load_array(source))
        return mnist_digit(to_grayscale(open_image(source, name, max_pixels)))
    except NoDigitError as error:
        raise PipelineError(f"{name}: {error}") from None


def open_image(
    source: Path | BinaryIO, name: str | None = None, max_pixels: int | None = None
) -> Image.Image:
    """Open and fully decode an image, upright as its EXIF orientation says (phone photos); one
    with more than `max_pixels` is refused from its header alone (ImageTooLarge).

    A JPEG longer than WORKING_SIDE is decoded straight at 1/2, 1/4 or 1/8 of its size, as long as
    that is no shorter: as cheap as a picture of that size. Other formats decode whole.
    """
    path = name or str(source)
    try:
        with Image.open(source) as image:
            width, height = image.size
            if max_pixels is not None and width * height > max_pixels:
                raise ImageTooLarge(path, f"{width}x{height} pixels, the limit is {max_pixels:,}")
            if max(width, height) > MAX_ASPECT_RATIO * min(width, height):
                raise PipelineError(
                    f"{path}: {width}x{height} pixels: too elongated to hold a digit "
                    f"(more than {MAX_ASPECT_RATIO}:1)"
                )
            # An animated GIF or a multi-page TIFF: which frame holds the digit is anyone's guess.
            # (A camera's MPO JPEG carries previews after its first frame, the photo itself.)
            # is_animated looks for a second frame only: n_frames walks them all, 5 s of CPU for
            # the 15,500 pages that fit in 2 MB of TIFF.
            if getattr(image, "is_animated", False) and image.format != "MPO":
                raise PipelineError(f"{path}: has several frames; give one picture per file")
            if (scale := WORKING_SIDE / max(width, height)) < 1:
                image.draft(None, (math.ceil(width * scale), math.ceil(height * scale)))
            # Image.open reads only the header: load() decodes, so a truncated file fails here.
            image.load()
            return ImageOps.exif_transpose(image)
    except FileNotFoundError:
        raise PipelineError(f"{path}: not found") from None
    except Image.UnidentifiedImageError:
        raise PipelineError(f"{path}: not an image file (or a format Pillow cannot read)") from None
    except Image.DecompressionBombError as error:
        raise ImageTooLarge(path, str(error)) from None
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
    """Any Pillow image -> float32 (H, W) luminance in [0, 255], shrunk to WORKING_SIDE first.

    Transparent pixels show the background that contrasts with the opaque ones: a digit drawn
    only in the alpha channel stays visible whether its ink is dark or light.
    """
    if image.mode in ("I", "F") or image.mode.startswith("I;16"):
        return high_depth_to_gray(image)
    if image.has_transparency_data:
        # Shrinking averages colours weighted by their opacity (Pillow premultiplies alpha), as
        # the blend below does, so blending after shrinking gives what blending before would.
        rgba = shrink(image.convert("RGBA"))
        alpha = np.asarray(rgba.getchannel("A"), dtype=np.float32) / 255
        luminance = np.asarray(rgba.convert("L"), dtype=np.float32)
        opaque_mean = (luminance * alpha).sum() / max(alpha.sum(), 1e-6)
        background = 255.0 if opaque_mean < 128 else 0.0
        return luminance * alpha + background * (1 - alpha)
    return np.asarray(shrink(image.convert("L")), dtype=np.float32)


def shrink(image: Image.Image) -> Image.Image:
    """`image` averaged down to WORKING_SIDE pixels along its longer side, if it is longer."""
    scale = WORKING_SIDE / max(image.size)
    if scale >= 1:
        return image
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.BOX)


def high_depth_to_gray(image: Image.Image) -> np.ndarray:
    """16- or 32-bit integer, or float, grayscale -> float32 in [0, 255], by the range it uses;
    shrunk (shrink) once that range is known from every pixel.

    convert("L") would clip such pixels to 0-255. The full scale is the smallest that holds every
    value: [0, 1] (floats only), 8, 16 or 31 bits (mode I is signed), so faint noise stays faint.
    """
    mode = image.mode
    values = np.asarray(image)  # in the picture's own type: no float64 copy of all its pixels
    if not np.all(np.isfinite(values)):
        raise NoDigitError(f"{mode} pixels include NaN or infinity")
    if values.size and values.min() < 0:
        raise NoDigitError(f"{mode} pixels include negative values; expected 0 and up")
    scales = (1.0, 255.0, 65535.0, 2.0**31 - 1) if mode == "F" else (255.0, 65535.0, 2.0**31 - 1)
    peak = values.max(initial=0)
    full_scale = next((scale for scale in scales if peak <= scale), peak)
    return np.asarray(shrink(image.convert("F")), dtype=np.float32) * np.float32(255 / full_scale)


def border(gray: np.ndarray) -> np.ndarray:
    """The outermost ring of pixels: mostly background when the digit has a margin."""
    return np.concatenate([gray[0], gray[-1], gray[1:-1, 0], gray[1:-1, -1]])


def is_dark_on_light(gray: np.ndarray) -> bool:
    """Whether the background is light: the border's median, robust to a stroke at the edge."""
    return bool(np.median(border(gray)) > 127.5)


def paper_brightness(light: np.ndarray) -> np.ndarray:
    """The background's brightness at each pixel of a picture whose background is its light part.

    A max filter over a coarse copy, scaled back up: ink is darker than the paper around it, so it
    drops out, while light that falls off across a photographed sheet is followed. The coarse copy
    has square cells, at most PAPER_GRID along either side whatever the picture's shape.
    """
    height, width = light.shape
    cell = max(1, math.ceil(max(height, width) / PAPER_GRID))
    # The brightest pixel of each cell; the edge cuts the last row and column of cells short
    # (padding them to whole cells made a 100000x40 picture 3125x100000).
    cells = np.maximum.reduceat(light, np.arange(0, height, cell), axis=0)
    cells = np.maximum.reduceat(cells, np.arange(0, width, cell), axis=1)
    paper = Image.fromarray(cells.astype(np.float32), "F").filter(
        ImageFilter.MaxFilter(PAPER_WINDOW)
    )
    # Scaled as if every cell were whole, and only the part of that the picture covers.
    covered = (0, 0, width / cell, height / cell)
    return np.asarray(paper.resize((width, height), Image.Resampling.BILINEAR, box=covered))


def otsu_threshold(values: np.ndarray, bins: int = 256) -> float:
    """The level in [0, 1] that best splits `values` into two classes (Otsu's method)."""
    counts, edges = np.histogram(values, bins=bins, range=(0, 1))
    centres = (edges[:-1] + edges[1:]) / 2
    weight_below = np.cumsum(counts, dtype=np.float64)
    weight_above = weight_below[-1] - weight_below
    mass_below = np.cumsum(counts * centres)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean_below = mass_below / weight_below
        mean_above = (mass_below[-1] - mass_below) / weight_above
        between = np.nan_to_num(weight_below * weight_above * (mean_below - mean_above) ** 2)
    return float(edges[np.argmax(between) + 1])


def ink_intensity(gray: np.ndarray) -> np.ndarray:
    """Grayscale -> float32 ink in [0, 1] on a 0 background, light digit on dark as in MNIST.

    Each pixel's ink is how much darker it is than the paper around it (paper_brightness), so a
    photo's uneven light does not turn paper into ink; the strongest ink becomes 1, as in MNIST's
    full-contrast strokes, and what falls below the picture's own ink threshold (Otsu's, on that
    ink) is paper texture, ruled lines or noise, set to 0.
    """
    if gray.size == 0:
        raise NoDigitError("empty image (no pixels)")
    light = gray if is_dark_on_light(gray) else 255 - gray  # the background is the light part
    ink = np.clip(1 - light / np.maximum(paper_brightness(light), 1), 0, 1)
    peak = float(ink.max())
    if peak < MIN_CONTRAST:
        raise NoDigitError("blank image: no digit found")
    ink = (ink / peak).astype(np.float32)
    strokes = ink > otsu_threshold(ink[ink > NOISE_LEVEL])
    # A stroke's soft edge is ink too, as in MNIST: weaker ink is kept within about one MNIST
    # pixel (a twentieth of the digit's height) of a stroke, and only there.
    rows, columns = ink_bbox(strokes)
    reach = max(1, round(max(rows.stop - rows.start, columns.stop - columns.start) / BOX_SIZE))
    ink[~(dilate(strokes, reach) & (ink > NOISE_LEVEL))] = 0
    return ink


def dilate(mask: np.ndarray, reach: int) -> np.ndarray:
    """Pixels within `reach` rows and columns of a True pixel of `mask`.

    Separable, and by doubling steps: log(reach) shifts per axis, however large the picture.
    """
    grown = mask.copy()
    for axis in (0, 1):
        covered = 0  # grown[i] is now the OR of mask within `covered` of i along this axis
        length = grown.shape[axis]
        while covered < min(reach, length - 1):  # past the edge there is nothing to reach
            step = min(covered + 1, reach - covered, length - 1 - covered)
            ahead, behind = np.zeros_like(grown), np.zeros_like(grown)
            ahead[_along(axis, 0, length - step)] = grown[_along(axis, step, length)]
            behind[_along(axis, step, length)] = grown[_along(axis, 0, length - step)]
            grown |= ahead | behind
            covered += step
    return grown


def _along(axis: int, start: int, stop: int) -> tuple[slice, ...]:
    """The index that slices start:stop along `axis` of a 2-D array."""
    return (slice(start, stop), slice(None)) if axis == 0 else (slice(None), slice(start, stop))


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
