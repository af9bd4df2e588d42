"""Pictures of any shape: read in bounded memory, or refused in one line; never another's loss.

A few KB of PNG can decode to a 100000x40 or a 4000000x1 picture. Such strips once cost
gigabytes (or asked for 1.82 TiB) and, in `predict`, the readings of the files given with them.
What reading costs is measured by benchmarks/hostile_pictures.py, not here.
"""

import io
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from mnist_pipeline import predict
from mnist_pipeline.plumbing.errors import PipelineError
from mnist_pipeline.reading.classifiers import Reading
from mnist_pipeline.reading.imaging import ImageTooLarge, paper_brightness, read_digit
from tests.support.pictures import (
    many_page_tiff,
    one_pixel_line,
    png_claiming,
    seven,
    tall_strip,
    wide_strip,
)

REPO = Path(__file__).resolve().parents[2]
# The one-pixel line first: it stopped `predict` at once (asking for 1.82 TiB), the others after
# 5 GB each.
HOSTILE = {"line.png": one_pixel_line, "wide.png": wide_strip, "tall.png": tall_strip}
SIZES = {"line.png": "4000000x1", "wide.png": "100000x40", "tall.png": "40x100000"}


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    """An untrained classifier of the right shape: these tests ask whether a file is read."""
    import keras

    model = keras.Sequential([keras.Input(shape=(784,)), keras.layers.Dense(10, "softmax")])
    path = tmp_path_factory.mktemp("model") / "model.tflite"
    model.export(str(path), format="litert", verbose=False)
    return path


def write(folder: Path, name: str, body: bytes) -> Path:
    (folder / name).write_bytes(body)
    return folder / name


@pytest.mark.parametrize("name", HOSTILE)
def test_a_strip_too_elongated_to_hold_a_digit_is_refused_in_one_line(name, tmp_path):
    path = write(tmp_path, name, HOSTILE[name]())
    with pytest.raises(PipelineError) as error:
        read_digit(path)
    message = str(error.value)
    assert re.fullmatch(rf"{re.escape(str(path))}: {SIZES[name]} pixels: too elongated .*", message)
    assert "\n" not in message


def test_a_tiff_of_15500_pages_is_refused_without_walking_its_pages(tmp_path):
    path = write(tmp_path, "pages.tif", many_page_tiff(15_500))  # 1.98 MB: an upload's size
    start = time.process_time()
    with pytest.raises(PipelineError, match=r"pages.tif: has several frames; give one picture"):
        read_digit(path)
    assert time.process_time() - start < 0.5  # counting its pages took 2-5 s


@pytest.mark.parametrize("turned", [False, True], ids=["wide", "tall"])
def test_the_most_elongated_picture_accepted_is_read_and_a_pixel_more_is_refused(tmp_path, turned):
    # 20:1, the bound docs/predict.md states: 800x40 is read, 801x40 refused.
    for width in (800, 801):
        picture = seven((width, 40), 36, (30, 20))
        picture = picture.transpose(Image.Transpose.ROTATE_90) if turned else picture
        picture.save(tmp_path / f"{width}.png")
    assert read_digit(tmp_path / "800.png").max() == 255
    size = "40x801" if turned else "801x40"
    with pytest.raises(PipelineError) as error:
        read_digit(tmp_path / "801.png")
    assert str(error.value) == (
        f"{tmp_path / '801.png'}: {size} pixels: too elongated to hold a digit (more than 20:1)"
    )


@pytest.mark.parametrize("shape", [(1, 4_000_000), (4_000_000, 1)])
def test_the_papers_brightness_is_estimated_whatever_the_aspect_ratio(shape):
    light = np.full(shape, 200, np.float32)
    light.reshape(-1)[1000:1100] = 20  # ink: darker than the paper around it
    paper = paper_brightness(light)
    assert paper.shape == shape
    np.testing.assert_allclose(paper, 200)


def pen_seven(size: tuple[int, int], left: int, top: int) -> Image.Image:
    """A 7 drawn with an 8 px pen, 300 px tall, its top left corner at (left, top), on white."""
    picture = Image.new("L", size, 255)
    stroke = [(left, top), (left + 200, top), (left + 70, top + 300)]
    ImageDraw.Draw(picture).line(stroke, fill=20, width=8, joint="curve")
    return picture


def saved(picture: Image.Image, kind: str, path: Path) -> Path:
    """The black-on-white `picture` saved as a `kind` of file: in colour, with its ink in the
    alpha channel alone, in 16 bits, or as a JPEG."""
    if kind == "transparent":
        ink = Image.new("RGBA", picture.size, (0, 0, 0, 0))
        ink.putalpha(Image.eval(picture, lambda value: 255 - value))
        picture = ink
    elif kind == "16-bit":
        picture = Image.fromarray(np.asarray(picture, np.uint16) * 257)
    else:
        picture = picture.convert("RGB")
    picture.save(path, format="JPEG" if kind == "jpeg" else "PNG")
    return path


def shifted_difference(digit: np.ndarray, reference: np.ndarray) -> float:
    """Mean absolute difference of two 28x28 digits, the first shifted by up to a pixel either way
    to match: centring rounds to whole pixels."""
    return min(
        np.abs(np.roll(digit.astype(int), (rows, columns), axis=(0, 1)) - reference).mean()
        for rows in (-1, 0, 1)
        for columns in (-1, 0, 1)
    )


@pytest.mark.parametrize("kind", ["colour", "transparent", "16-bit", "jpeg"])
def test_a_large_picture_gives_the_digit_a_crop_around_it_gives(kind, tmp_path):
    large = pen_seven((2000, 2000), 1300, 900)  # read at a reduced size
    crop = large.crop((1150, 800, 1650, 1300))  # read at its own, and losslessly: the reference
    digit = read_digit(saved(large, kind, tmp_path / "large"))
    reference = read_digit(saved(crop, "colour", tmp_path / "crop.png"))
    assert shifted_difference(digit, reference) < 1.5


def test_predict_reads_the_good_picture_given_beside_hostile_ones(model_path, tmp_path):
    good = tmp_path / "good.png"
    seven((300, 300), 200, (150, 150)).save(good)
    bad = [write(tmp_path, name, make()) for name, make in HOSTILE.items()]
    command = [sys.executable, "-m", "mnist_pipeline.predict", "--model", str(model_path)]
    result = subprocess.run(
        [*command, bad[0], good, *bad[1:]], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    _, *readings = result.stdout.splitlines()  # after the line naming the model
    assert [line.split(": ")[0] for line in readings] == [str(good)]
    errors = [line for line in result.stderr.splitlines() if line.startswith("predict: ")]
    assert [line.split(": ")[2] for line in errors] == [str(path) for path in bad], errors


@pytest.mark.parametrize(
    "failure",
    [
        MemoryError("Unable to allocate 1.82 TiB for an array with shape (125000, 4000000)"),
        RuntimeError("a decoder's own bug,\nover two lines"),
    ],
    ids=["out-of-memory", "other"],
)
def test_any_failure_to_read_one_file_costs_only_its_reading(
    failure, model_path, tmp_path, monkeypatch, capsys
):
    good, bad = tmp_path / "good.png", tmp_path / "bad.png"
    seven((300, 300), 200, (150, 150)).save(good)
    seven((300, 300), 200, (150, 150)).save(bad)
    read = predict.read_digit

    def fail_on_bad(file: Path) -> np.ndarray:
        if file == bad:
            raise failure
        return read(file)

    monkeypatch.setattr(predict, "read_digit", fail_on_bad)
    error, reading = predict.predict([bad, good], model_path)
    assert error.startswith(f"{bad}: cannot read: {type(failure).__name__}: ")
    assert "\n" not in error
    assert isinstance(reading, Reading) and reading.digit in range(10)
    assert capsys.readouterr().err.splitlines() == [f"predict: error: {error}"]


@pytest.mark.parametrize(("max_pixels", "too_large"), [(300 * 200, False), (300 * 200 - 1, True)])
def test_a_picture_over_max_pixels_is_refused_from_its_header_before_decoding(
    max_pixels, too_large
):
    # Its header claims 300x200 pixels, its data is cut short: decoding it would fail.
    picture = io.BytesIO(png_claiming(300, 200))
    with pytest.raises(PipelineError) as error:
        read_digit(picture, "upload", max_pixels)
    assert isinstance(error.value, ImageTooLarge) == too_large
    if too_large:
        assert error.value.reason == f"300x200 pixels, the limit is {max_pixels:,}"
        assert str(error.value) == f"upload: image too large ({error.value.reason})"
    else:
        assert str(error.value).startswith("upload: cannot read image")
