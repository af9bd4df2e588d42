"""Image preparation (mnist_pipeline.imaging) and the `predict` command, end to end.

The end-to-end tests train a small model on digits rendered with Pillow's font, so they need no
data and no network; when the pipeline's own model and test set are present, they are tried too.
"""

import io
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from benchmarks.pictures import off_centre_drawing, paper_photo
from mnist_pipeline import paths
from mnist_pipeline.errors import PipelineError
from mnist_pipeline.imaging import (
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
from mnist_pipeline.predict import build_parser

REPO = Path(__file__).resolve().parent.parent
MNIST_CENTRE = (14.0, 14.0)  # where MNIST's digits have their centre of mass


def render_glyph(digit: int, size: int, canvas: int = 300, at: tuple[int, int] = (150, 150)):
    """Black digit on a white RGB canvas, drawn with Pillow's bundled font."""
    image = Image.new("RGB", (canvas, canvas), "white")
    font = ImageFont.load_default(size=size)
    ImageDraw.Draw(image).text(at, str(digit), fill=(20, 20, 20), font=font, anchor="mm")
    return image


def ink_box(digit: np.ndarray) -> tuple[int, int]:
    rows, columns = np.flatnonzero(digit.any(axis=1)), np.flatnonzero(digit.any(axis=0))
    return rows[-1] - rows[0] + 1, columns[-1] - columns[0] + 1


def save(image: Image.Image, path: Path, **options) -> Path:
    image.save(path, **options)
    return path


# --- imaging ---------------------------------------------------------------------------------


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
        with pytest.raises(PipelineError, match=f"{name}: has 2 frames; give one picture per file"):
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


def truncated_png(path: Path) -> Path:
    picture = Image.fromarray(np.random.default_rng(1).integers(0, 256, (64, 64), dtype=np.uint8))
    save(picture, path)
    path.write_bytes(path.read_bytes()[:200])  # header intact: Image.open alone succeeds
    return path


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


def test_default_model_is_the_pipelines():
    args = build_parser().parse_args(["digit.png"])
    assert args.model == paths.MODEL_FILE and not args.json


# --- the command, end to end -----------------------------------------------------------------


def synthetic_digits(count_per_digit: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """MNIST-form digits from Pillow's font, varied in size, weight, slant and rotation."""
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for label in np.repeat(np.arange(10), count_per_digit):
        canvas = Image.new("L", (120, 120), 0)
        font = ImageFont.load_default(size=int(rng.integers(50, 80)))
        ImageDraw.Draw(canvas).text(
            (60, 60),
            str(label),
            fill=255,
            font=font,
            anchor="mm",
            stroke_width=int(rng.integers(0, 4)),
            stroke_fill=255,
        )
        slant = rng.uniform(-0.3, 0.3)
        canvas = canvas.transform(
            canvas.size,
            Image.Transform.AFFINE,
            (1, slant, -60 * slant, 0, 1, 0),
            Image.Resampling.BILINEAR,
        ).rotate(rng.uniform(-10, 10), Image.Resampling.BILINEAR)
        images.append(mnist_digit(np.asarray(canvas, dtype=np.float32)))
        labels.append(label)
    return np.stack(images), np.array(labels)


def present(digit: np.ndarray, path: Path, rng: np.random.Generator) -> Path:
    """A 28x28 MNIST digit as a person would hand it in: large, dark ink on paper, off centre,
    saved in `path`'s format."""
    return save(Image.open(io.BytesIO(off_centre_drawing(digit, rng))), path)


@pytest.fixture(scope="module")
def synthetic_model(tmp_path_factory):
    """A small network trained on the synthetic digits, saved as the pipeline saves its model."""
    from mnist_pipeline.params import ModelParams, TrainParams
    from mnist_pipeline.preprocessing import normalize_pixels, one_hot
    from mnist_pipeline.training import save_model, train_model

    images, labels = synthetic_digits(60, seed=1)
    model, _ = train_model(
        normalize_pixels(images),
        one_hot(labels),
        ModelParams(hidden_units=[128]),
        TrainParams(epochs=15, batch_size=32, learning_rate=0.003, seed=3),
    )
    path = tmp_path_factory.mktemp("model") / "model.keras"
    save_model(model, path)
    return path, model


def run_predict(*args: object) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "mnist_pipeline.predict", *map(str, args)]
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120)


def error_lines(stderr: str) -> list[str]:
    """The command's own lines, without TensorFlow's start-up notices."""
    return [line for line in stderr.splitlines() if line.startswith("predict: ")]


def test_presented_digits_get_the_same_prediction_as_the_originals(synthetic_model, tmp_path):
    model_path, model = synthetic_model
    from mnist_pipeline.preprocessing import normalize_pixels

    originals, labels = synthetic_digits(2, seed=2)
    expected = model.predict(normalize_pixels(originals), verbose=0).argmax(axis=1)
    assert (expected == labels).mean() >= 0.8  # the model has learnt something: not a constant

    rng = np.random.default_rng(3)
    files = [
        present(digit, tmp_path / f"{number:02}-{label}.{suffix}", rng)
        for number, (digit, label) in enumerate(zip(originals, labels, strict=True))
        for suffix in ("png", "jpg")
    ]
    result = run_predict("--json", "--model", model_path, *files, tmp_path / "missing.png")

    assert result.returncode == 1, result.stderr  # because of missing.png
    readings = json.loads(result.stdout)
    assert [reading["file"] for reading in readings] == [str(file) for file in files] + [
        str(tmp_path / "missing.png")
    ]
    *good, missing = readings
    assert missing == {
        "file": str(tmp_path / "missing.png"),
        "error": f"{missing['file']}: not found",
    }
    for reading in good:
        assert set(reading) == {
            "file",
            "digit",
            "probability",
            "runner_up",
            "runner_up_probability",
        }
        assert reading["digit"] != reading["runner_up"]
        assert 1 >= reading["probability"] >= reading["runner_up_probability"] >= 0
    predicted = np.array([reading["digit"] for reading in good]).reshape(-1, 2)  # png, jpg
    assert (predicted == expected[:, None]).mean() >= 0.8


def test_bad_inputs_are_reported_and_the_good_ones_still_read(synthetic_model, tmp_path):
    model_path, _ = synthetic_model
    good = present(
        synthetic_digits(1, seed=4)[0][7], tmp_path / "good.png", np.random.default_rng(5)
    )
    np.save(tmp_path / "good.npy", synthetic_digits(1, seed=4)[0][7])
    (tmp_path / "notes.png").write_text("not a picture\n")
    bad = [
        tmp_path / "missing.png",
        tmp_path / "notes.png",
        truncated_png(tmp_path / "truncated.png"),
        save(Image.new("RGB", (200, 200), "white"), tmp_path / "blank.png"),
        tmp_path / "empty.jpg",
    ]
    (tmp_path / "empty.jpg").write_bytes(b"")

    result = run_predict("--model", model_path, bad[0], good, *bad[1:], tmp_path / "good.npy")

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = result.stdout.splitlines()
    assert [line.split(": ")[0] for line in lines] == [str(good), str(tmp_path / "good.npy")]
    assert all(" runner-up " in line and line.endswith("%)") for line in lines), lines
    errors = error_lines(result.stderr)
    assert [line.split(": ")[2] for line in errors] == [str(path) for path in bad], errors
    assert all(line.startswith("predict: error: ") for line in errors)


def test_installed_console_script_predicts_from_any_folder(synthetic_model, tmp_path):
    model_path, model = synthetic_model
    script = Path(sys.executable).parent / "mnist-predict"
    assert script.is_file(), "mnist-predict is not installed: `pip install -e .` (make does it)"
    digits, labels = synthetic_digits(1, seed=2)
    np.save(tmp_path / "digit.npy", digits[3])
    result = subprocess.run(
        [str(script), "--json", "--model", str(model_path), "digit.npy"],
        cwd=tmp_path,  # outside the repository: the installed package, not the source tree
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    from mnist_pipeline.preprocessing import normalize_pixels

    expected = int(model.predict(normalize_pixels(digits[3:4]), verbose=0).argmax())
    assert json.loads(result.stdout)[0]["digit"] == expected


def test_missing_model_is_one_line_pointing_at_dvc_repro(tmp_path):
    picture = save(render_glyph(6, size=120), tmp_path / "six.png")
    result = run_predict("--model", tmp_path / "none.keras", picture, "--json")
    assert result.returncode == 1 and result.stdout == ""
    # Checked before TensorFlow loads: nothing else on stderr either.
    assert result.stderr.splitlines() == [
        f"predict: error: {tmp_path / 'none.keras'}: no trained model; "
        "run `dvc repro` in the project first, or name the model with --model PATH"
    ]


def test_outside_the_project_the_message_says_where_it_looked(tmp_path):
    picture = save(render_glyph(6, size=120), tmp_path / "six.png")
    result = subprocess.run(
        [sys.executable, "-m", "mnist_pipeline.predict", "six.png"],
        cwd=tmp_path,
        env={"PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1 and picture.is_file()
    assert result.stderr.splitlines() == [
        f"predict: error: models/model.keras: no trained model (looked in {tmp_path}/models); "
        "run `dvc repro` in the project first, or name the model with --model PATH"
    ]


def test_a_model_for_something_else_is_refused(synthetic_model, tmp_path):
    import keras

    from mnist_pipeline.predict import load_classifier

    other = keras.Sequential([keras.Input(shape=(5,)), keras.layers.Dense(3)])
    other.save(tmp_path / "other.keras")
    with pytest.raises(PipelineError, match="other.keras: not a digit classifier"):
        load_classifier(tmp_path / "other.keras")


needs_the_pipelines_model = pytest.mark.skipif(
    not (REPO / paths.MODEL_FILE).is_file() or not (REPO / paths.RAW_DIR / "x_test.npy").is_file(),
    reason="needs the pipeline's trained model and raw test set (`dvc repro`)",
)


@needs_the_pipelines_model
def test_real_mnist_digits_survive_presentation(tmp_path):
    from mnist_pipeline.preprocessing import normalize_pixels
    from mnist_pipeline.training import load_model

    originals = np.load(REPO / paths.RAW_DIR / "x_test.npy", mmap_mode="r")[:30]
    expected = load_model(REPO / paths.MODEL_FILE).predict(normalize_pixels(originals), verbose=0)
    rng = np.random.default_rng(6)
    files = [present(digit, tmp_path / f"{n:02}.jpg", rng) for n, digit in enumerate(originals)]
    result = run_predict("--json", *files)  # the default model, from the repository root
    assert result.returncode == 0, result.stderr
    predicted = np.array([reading["digit"] for reading in json.loads(result.stdout)])
    assert (predicted == expected.argmax(axis=1)).mean() >= 0.9


@needs_the_pipelines_model
def test_phone_photos_of_digits_on_paper_are_read(tmp_path):
    # Held-out digits (the test set, from its end), as photos: uneven light, ruled lines on half.
    digits = np.load(REPO / paths.RAW_DIR / "x_test.npy", mmap_mode="r")[-40:]
    labels = np.load(REPO / paths.RAW_DIR / "y_test.npy")[-40:]
    rng = np.random.default_rng(7)
    files = []
    for number, digit in enumerate(digits):
        files.append(tmp_path / f"photo-{number:02}.jpg")
        files[-1].write_bytes(paper_photo(digit, rng, ruled=number % 2 == 1))
    result = run_predict("--json", *files)
    assert result.returncode == 0, result.stderr
    read = np.array([reading["digit"] for reading in json.loads(result.stdout)])
    assert (read == labels).mean() >= 0.9
