"""Pictures for `predict`'s tests and benchmarks: digits of Pillow's font, MNIST digits rendered
as the pictures people hand `predict`, damaged files, and hostile and the largest legal pictures
(benchmarks/hostile_pictures.py).

off_centre_drawing and paper_photo take a 28x28 uint8 MNIST digit (light on dark) and a random
generator, and return a JPEG (quality 85) of it: dark ink on paper, at a size and place of the
generator's choosing.
"""

import io
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

PAPER = (246, 242, 232)
BLUE_PEN = (25, 35, 110)
RULED_LINE = (150, 175, 225)


def ink_coverage(
    digit: np.ndarray, field_size: int, canvas: tuple[int, int], at: tuple[int, int]
) -> Image.Image:
    """The digit scaled to a field_size square and placed at `at` on a black canvas: 0-255 ink."""
    ink = Image.fromarray(digit).resize((field_size, field_size), Image.Resampling.BICUBIC)
    coverage = Image.new("L", canvas, 0)
    coverage.paste(ink, at)
    return coverage


def as_jpeg(picture: Image.Image) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()


def off_centre_drawing(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """Blue ink on evenly lit paper, 7-10x MNIST's size, anywhere on a slightly larger sheet."""
    field = 28 * int(rng.integers(7, 11))
    width, height = field + int(rng.integers(60, 200)), field + int(rng.integers(60, 200))
    at = (int(rng.integers(0, width - field)), int(rng.integers(0, height - field)))
    coverage = ink_coverage(digit, field, (width, height), at)
    paper, pen = Image.new("RGB", coverage.size, PAPER), Image.new("RGB", coverage.size, BLUE_PEN)
    return as_jpeg(Image.composite(pen, paper, coverage))


def paper_photo(digit: np.ndarray, rng: np.random.Generator, ruled: bool) -> bytes:
    """A phone photo of the digit written on a sheet: 480x360, the light
    falling off across the sheet (its darkest corner 55-80% as bright as its brightest), blue
    ruled lines if `ruled`, sensor noise, the digit 150-230 px tall anywhere on the sheet.
    """
    width, height = 480, 360
    digit_height = int(rng.integers(150, 231))
    field = round(digit_height * 28 / 20)  # MNIST's digits are 20 px tall in a 28 px field
    at = (int(rng.integers(0, width - field + 1)), int(rng.integers(0, height - field + 1)))
    coverage = np.asarray(ink_coverage(digit, field, (width, height), at), np.float32) / 255

    sheet = np.empty((height, width, 3), np.float32)
    sheet[:] = PAPER
    if ruled:
        spacing, offset = int(rng.integers(28, 41)), int(rng.integers(0, 28))
        for row in range(offset, height - 1, spacing):
            sheet[row : row + 2] = RULED_LINE
    pen = np.array(BLUE_PEN if rng.random() < 0.5 else (30, 30, 30), np.float32)
    picture = sheet * (1 - coverage[..., None]) + pen * coverage[..., None]

    # Light falls off linearly along a random direction, down to `darkest` at the far corner.
    darkest = rng.uniform(0.55, 0.80)
    angle = rng.uniform(0, 2 * np.pi)
    rows, columns = np.mgrid[0:height, 0:width]
    along = columns * np.cos(angle) + rows * np.sin(angle)
    along = (along - along.min()) / (along.max() - along.min())
    picture *= (1 - (1 - darkest) * along)[..., None]
    picture += rng.normal(0, 4, picture.shape)  # sensor noise
    return as_jpeg(Image.fromarray(np.clip(picture, 0, 255).astype(np.uint8)))


def render_glyph(digit: int, size: int, canvas: int = 300, at: tuple[int, int] = (150, 150)):
    """Black digit on a white RGB canvas, drawn with Pillow's bundled font."""
    image = Image.new("RGB", (canvas, canvas), "white")
    font = ImageFont.load_default(size=size)
    ImageDraw.Draw(image).text(at, str(digit), fill=(20, 20, 20), font=font, anchor="mm")
    return image


def save(image: Image.Image, path: Path, **options) -> Path:
    image.save(path, **options)
    return path


def truncated_png(path: Path) -> Path:
    picture = Image.fromarray(np.random.default_rng(1).integers(0, 256, (64, 64), dtype=np.uint8))
    save(picture, path)
    path.write_bytes(path.read_bytes()[:200])  # header intact: Image.open alone succeeds
    return path


def seven(size: tuple[int, int], height: int, at: tuple[int, int]) -> Image.Image:
    """A dark 7, `height` px tall in Pillow's font, centred at `at` on white paper."""
    picture = Image.new("L", size, 255)
    font = ImageFont.load_default(size=height)
    ImageDraw.Draw(picture).text(at, "7", fill=20, font=font, anchor="mm")
    return picture


def encoded(picture: Image.Image, format: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, format=format, **options)
    return buffer.getvalue()


def wide_strip() -> bytes:
    return encoded(seven((100_000, 40), 36, (30, 20)), "PNG", optimize=True)


def tall_strip() -> bytes:
    strip = seven((100_000, 40), 36, (30, 20)).transpose(Image.Transpose.ROTATE_90)
    return encoded(strip, "PNG", optimize=True)


def one_pixel_line() -> bytes:
    line = Image.new("L", (4_000_000, 1), 255)
    line.paste(0, (1000, 0, 1100, 1))
    return encoded(line, "PNG", optimize=True)


def elongated_strip() -> bytes:
    return encoded(seven((8000, 400), 360, (300, 200)), "PNG", optimize=True)


def colour_drawing() -> bytes:
    return encoded(seven((2000, 2000), 1400, (900, 1050)).convert("RGB"), "PNG")


def transparent_drawing() -> bytes:
    """Black ink whose opacity is the drawing, on fully transparent paper."""
    ink = Image.new("RGBA", (2000, 2000), (0, 0, 0, 0))
    ink.putalpha(Image.eval(seven((2000, 2000), 1400, (1100, 950)), lambda value: 255 - value))
    return encoded(ink, "PNG")


def sixteen_bit_drawing() -> bytes:
    values = np.asarray(seven((2000, 2000), 1400, (1000, 1000)), np.uint16) * 257
    return encoded(Image.fromarray(values), "PNG")


def photo(size: tuple[int, int], format: str = "JPEG", **options: object) -> bytes:
    """A 7 on paper as a phone photographs it: light falling off to 60% across it, sensor noise."""
    width, height = size
    paper = np.asarray(seven(size, height * 2 // 3, (width * 2 // 5, height // 2)), np.float32)
    paper = paper * np.linspace(1, 0.6, width, dtype=np.float32)
    paper += np.random.default_rng(0).normal(0, 3, paper.shape).astype(np.float32)
    picture = Image.fromarray(np.clip(paper, 0, 255).astype(np.uint8)).convert("RGB")
    return encoded(picture, format, **options)


def float_drawing() -> bytes:
    """32-bit float pixels in [0, 1], as a scientific camera's TIFF holds them."""
    values = np.asarray(seven((2000, 2000), 1400, (1000, 1000)), np.float32) / 255
    return encoded(Image.fromarray(values), "TIFF", compression="tiff_adobe_deflate")


def many_page_tiff(pages: int = 15_500) -> bytes:
    """A TIFF of `pages` 1x1 grayscale pages, 128 bytes each (15,500: 1.98 MB, within the web
    server's upload limit), written by hand: Pillow's save_all takes minutes for as many."""
    import struct

    entry_count, page_size = 8, 128
    body = bytearray(b"II*\x00" + struct.pack("<I", 8))
    for page in range(pages):
        start = 8 + page * page_size
        pixel = start + 2 + entry_count * 12 + 4  # the page's one byte, after its IFD
        entries = [  # (tag, type SHORT=3 or LONG=4, value)
            (256, 3, 1), (257, 3, 1), (258, 3, 8), (259, 3, 1),
            (262, 3, 1), (273, 4, pixel), (278, 3, 1), (279, 4, 1),
        ]  # fmt: skip
        ifd = struct.pack("<H", entry_count) + b"".join(
            struct.pack("<HHII", tag, kind, 1, value) for tag, kind, value in entries
        )
        following = start + page_size if page + 1 < pages else 0
        page_bytes = ifd + struct.pack("<I", following) + b"\x80"
        body += page_bytes.ljust(page_size, b"\x00")
    return bytes(body)


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_claiming(width: int, height: int) -> bytes:
    """A small PNG whose header claims width x height grayscale pixels (its data is cut short)."""
    header = png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
    return b"\x89PNG\r\n\x1a\n" + header + png_chunk(b"IDAT", zlib.compress(bytes(1000)))
