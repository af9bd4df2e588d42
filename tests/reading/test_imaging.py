"""Image preparation (reading/imaging.py): any picture of a digit -> MNIST's 28x28 form."""

import re

import numpy as np
import pytest
from PIL import Image, ImageFilter

from mnist_pipeline.plumbing.errors import PipelineError
from mnist_pipeline.reading.imaging import (
    NoDigitError,
    centre_in_field,
    centre_of_mass,
    digit_from_array,
    dilate,
    fit_box,
    is_dark_on_light,
    mnist_digit,
    read_digit,
    to_grayscale,
)
from tests.support.pictures import render_glyph, save, truncated_png

MNIST_CENTRE = (14.0, 14.0)  # where MNIST's digits have their centre of mass


def ink_box(digit: np.ndarray) -> tuple[int, int]:
    rows, columns = np.flatnonzero(digit.any(axis=1)), np.flatnonzero(digit.any(axis=0))
    return rows[-1] - rows[0] + 1, columns[-1] - columns[0] + 1


def test_off_centre_dark_digit_on_white_comes_out_like_mnist():
    gray = to_grayscale(render_glyph(7, size=120, at=(80, 90)))
    digit = mnist_digit(gray)
    assert digit.dtype == np.uint8 and digit.shape == (28, 28)
    assert max(ink_box(digit)) == 20 and min(ink_box(digit)) <= 20
    row, column = centre_of_mass(digit.astype(np.float64))
    assert np.hypot(row - MNIST_CENTRE[0], column - MNIST_CENTRE[1]) <= 1
    assert digit.max() == 255  # full-contrast ink ...
    assert digit[0].max() == digit[-1].max() == 0  # ... on a black background


def test_inversion_is_decided_by_the_background():
    dark_on_light = to_grayscale(render_glyph(3, size=150))
    light_on_dark = 255 - dark_on_light
    assert is_dark_on_light(dark_on_light)
    assert not is_dark_on_light(light_on_dark)
    # Either polarity gives the same MNIST digit.
    np.testing.assert_array_equal(mnist_digit(dark_on_light), mnist_digit(light_on_dark))


def test_a_stroke_touching_the_edge_does_not_flip_the_decision():
    gray = to_grayscale(render_glyph(1, size=150))
    gray[:, 140:160] = 0  # a black bar across the whole image, through top and bottom edges
    assert is_dark_on_light(gray)


def as_mode(image: Image.Image, mode: str) -> Image.Image:
    """The same black-on-white picture in another mode; transparent ones keep ink in alpha."""
    gray = image.convert("L")
    if mode == "P":
        return image.convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    if mode == "I;16":
        return Image.fromarray(np.asarray(gray, dtype=np.uint16) * 257)
    if mode in ("RGBA", "LA"):  # black ink, opacity = darkness, fully transparent paper
        ink = Image.new(mode, image.size, 0)
        ink.putalpha(Image.eval(gray, lambda value: 255 - value))
        return ink
    return image.convert(mode)


@pytest.mark.parametrize("mode", ["RGB", "L", "P", "RGBA", "LA", "I;16", "CMYK"])
def test_every_colour_mode_gives_the_same_digit(mode, tmp_path):
    picture = render_glyph(5, size=140, at=(170, 130))
    expected = mnist_digit(to_grayscale(picture.convert("L")))
    digit = mnist_digit(to_grayscale(as_mode(picture, mode)))
    assert np.abs(digit.astype(int) - expected).mean() < 2


@pytest.mark.parametrize(
    ("mode", "scale"),
    [("F", 1 / 255), ("F", 1.0), ("I", 257), ("I", 2**23), ("I;16", 257)],
)
def test_high_depth_tiffs_are_read_by_their_range(mode, scale, tmp_path):
    picture = render_glyph(8, size=140, at=(160, 140)).convert("L")
    expected = mnist_digit(to_grayscale(picture))
    values = np.asarray(picture, dtype=np.float64) * scale
    dtype = {"F": np.float32, "I": np.int32, "I;16": np.uint16}[mode]
    path = save(Image.fromarray(values.astype(dtype)), tmp_path / f"eight-{mode}.tif")
    assert Image.open(path).mode == mode
    assert np.abs(read_digit(path).astype(int) - expected).mean() < 2


def test_faint_noise_in_a_16_bit_image_is_no_digit(tmp_path):
    noise = np.random.default_rng(3).integers(40000, 40040, (60, 60)).astype(np.int32)
    with pytest.raises(PipelineError, match="blank image: no digit found"):
        read_digit(save(Image.fromarray(noise), tmp_path / "flat.tif"))


def test_float_pixels_that_are_not_numbers_are_refused(tmp_path):
    values = np.ones((40, 40), np.float32)
    values[3, 4] = np.nan
    with pytest.raises(PipelineError, match=r"nan.tif: F pixels include NaN or infinity"):
        read_digit(save(Image.fromarray(values), tmp_path / "nan.tif"))


def test_pictures_with_several_frames_are_refused(tmp_path):
    frames = [render_glyph(digit, size=120).convert("L") for digit in (3, 4)]
    for name in ("digits.gif", "digits.tif"):
        frames[0].save(tmp_path / name, save_all=True, append_images=frames[1:])
        with pytest.raises(PipelineError, match=f"{name}: has several frames; give one picture"):
            read_digit(tmp_path / name)


def test_a_cameras_mpo_jpeg_is_read_from_its_photo_not_refused(tmp_path):
    photo, preview = render_glyph(3, size=140), render_glyph(8, size=60)
    path = tmp_path / "camera.jpg"
    photo.save(path, format="MPO", save_all=True, append_images=[preview])
    with Image.open(path) as mpo:
        assert mpo.format == "MPO" and mpo.n_frames == 2
        first_frame = mnist_digit(to_grayscale(mpo.convert("RGB")))
    np.testing.assert_array_equal(read_digit(path), first_frame)


def test_light_ink_on_transparent_paper_stays_visible():
    gray = np.asarray(render_glyph(2, size=140).convert("L"))
    ink = Image.new("RGBA", (300, 300), (255, 255, 255, 0))
    ink.putalpha(Image.fromarray(255 - gray))  # white ink: it would vanish on white paper
    expected = mnist_digit(gray.astype(np.float32))
    assert np.abs(mnist_digit(to_grayscale(ink)).astype(int) - expected).mean() < 2


def test_palette_gif_with_transparency_is_read(tmp_path):
    picture = as_mode(render_glyph(4, size=140), "P")
    white = picture.getpixel((0, 0))
    path = save(picture, tmp_path / "four.gif", transparency=white)
    expected = mnist_digit(to_grayscale(render_glyph(4, size=140)))
    assert np.abs(read_digit(path).astype(int) - expected).mean() < 2


def test_fit_box_keeps_the_aspect_ratio():
    bar = np.ones((100, 10), dtype=np.float32)
    assert fit_box(bar).shape == (20, 2)
    assert fit_box(np.ones((3, 6), dtype=np.float32)).shape == (10, 20)  # small ones grow


@pytest.mark.parametrize("reach", [1, 2, 5, 13, 40])
def test_dilate_grows_ink_like_a_max_filter(reach):
    mask = np.random.default_rng(reach).random((30, 37)) > 0.97
    expected = np.asarray(Image.fromarray(mask).filter(ImageFilter.MaxFilter(2 * reach + 1)))
    np.testing.assert_array_equal(dilate(mask, reach), expected)


def test_centring_never_cuts_off_ink():
    lopsided = np.zeros((20, 20), dtype=np.float32)
    lopsided[:2, :2] = 1  # all the mass in a corner: exact centring would push it outside
    assert centre_in_field(lopsided).sum() == lopsided.sum()


@pytest.mark.parametrize(
    "picture",
    [
        Image.new("RGB", (300, 200), "white"),
        Image.new("L", (50, 50), 128),
        Image.new("L", (1, 1), 0),
        Image.fromarray(np.random.default_rng(0).integers(240, 256, (80, 80), dtype=np.uint8)),
        Image.new("RGBA", (40, 40), (0, 0, 0, 0)),
    ],
    ids=["white", "grey", "one-pixel", "faint-noise", "transparent"],
)
def test_blank_images_are_refused(picture, tmp_path):
    with pytest.raises(NoDigitError, match="blank"):
        mnist_digit(to_grayscale(picture))
    path = save(picture, tmp_path / "blank.png")
    with pytest.raises(PipelineError, match=rf"^{re.escape(str(path))}: blank image"):
        read_digit(path)


def test_zero_size_array_is_refused():
    with pytest.raises(NoDigitError, match="empty"):
        mnist_digit(np.zeros((0, 10), dtype=np.float32))


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda folder: folder / "missing.png", "not found"),
        (lambda folder: folder / "missing.npy", "not found"),
        (lambda folder: folder / "notes.png", "not an image"),
        (lambda folder: folder / "empty.jpg", "not an image"),
        (lambda folder: truncated_png(folder / "truncated.png"), "truncated"),
        (lambda folder: folder, "cannot read image"),
    ],
    ids=["missing", "missing-npy", "text", "empty-file", "truncated", "directory"],
)
def test_unreadable_files_raise_an_error_naming_them(make, message, tmp_path):
    (tmp_path / "notes.png").write_text("not a picture\n")
    (tmp_path / "empty.jpg").write_bytes(b"")
    path = make(tmp_path)
    with pytest.raises(PipelineError, match=message) as error:
        read_digit(path)
    assert str(error.value).startswith(f"{path}: ")


def test_npy_holds_a_digit_in_mnist_form(tmp_path):
    digit = np.random.default_rng(2).integers(0, 256, (28, 28), dtype=np.uint8)
    np.save(tmp_path / "raw.npy", digit)
    np.save(tmp_path / "scaled.npy", digit / 255)  # float64 in [0, 1]
    np.save(tmp_path / "flat.npy", (digit / 255).astype(np.float32).reshape(784))
    for name in ("raw.npy", "scaled.npy", "flat.npy"):
        np.testing.assert_array_equal(read_digit(tmp_path / name), digit, err_msg=name)


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (np.zeros((10, 28, 28), np.uint8), "shape"),
        (np.full((28, 28), 2.0), r"\[0, 1\]"),
        (np.full((28, 28), np.nan), r"\[0, 1\]"),
        (np.full((28, 28), 300), "0-255"),
        (np.zeros((28, 28), bool), "integer or float"),
    ],
    ids=["stack", "float-range", "nan", "int-range", "bool"],
)
def test_npy_outside_mnist_form_is_refused(array, message, tmp_path):
    with pytest.raises(NoDigitError, match=message):
        digit_from_array(array)
    np.save(tmp_path / "bad.npy", array)
    with pytest.raises(PipelineError, match=rf"^{re.escape(str(tmp_path / 'bad.npy'))}: "):
        read_digit(tmp_path / "bad.npy")


def test_npy_with_pickled_objects_is_not_unpickled(tmp_path):
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(PipelineError, match="objects.npy: not a readable .npy"):
        read_digit(tmp_path / "objects.npy")
