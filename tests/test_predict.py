"""The `predict` command, end to end.

The tests train a small model on digits rendered with Pillow's font, so they need no data and no
network; when the pipeline's own model and test set are present, they are tried too.
"""

import hashlib
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from mnist_pipeline.plumbing import paths
from mnist_pipeline.predict import build_parser
from mnist_pipeline.reading.imaging import mnist_digit
from tests.support.outputs import needs_the_pipelines_model
from tests.support.pictures import (
    off_centre_drawing,
    paper_photo,
    render_glyph,
    save,
    truncated_png,
)

REPO = Path(__file__).resolve().parent.parent


def test_default_model_is_the_pipelines():
    args = build_parser().parse_args(["digit.png"])
    assert args.model == str(paths.SERVING_MODEL_FILE) and not args.json


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
    """A small network trained on the synthetic digits, saved as the train stage saves it: its
    LiteRT export (the path returned) and the Keras archive beside it (`.keras`)."""
    from mnist_pipeline.data.preprocessing import normalize_pixels, one_hot
    from mnist_pipeline.network.archive import save_model
    from mnist_pipeline.params import DenseParams, ModelParams, TrainParams
    from mnist_pipeline.training.export import export_for_serving
    from mnist_pipeline.training.fit import train_model

    images, labels = synthetic_digits(60, seed=1)
    model, _ = train_model(
        normalize_pixels(images),
        one_hot(labels),
        ModelParams(dense=DenseParams(hidden_units=[128])),
        TrainParams(epochs=15, batch_size=32, learning_rate=0.003, seed=3),
    )
    path = tmp_path_factory.mktemp("model") / "model.tflite"
    save_model(model, path.with_suffix(".keras"))
    export_for_serving(model, path, normalize_pixels(images))
    return path, model


def run_predict(*args: object) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "mnist_pipeline.predict", *map(str, args)]
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120)


def error_lines(stderr: str) -> list[str]:
    """The command's own lines, without TensorFlow's start-up notices (a .keras model's)."""
    return [line for line in stderr.splitlines() if line.startswith("predict: ")]


def test_presented_digits_get_the_same_prediction_as_the_originals(synthetic_model, tmp_path):
    model_path, model = synthetic_model
    from mnist_pipeline.data.preprocessing import normalize_pixels

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
            "unsure",
            "model",
        }
        assert reading["model"] == {
            "reference": str(model_path),
            "version": None,
            "revision": None,
            "md5": hashlib.md5(model_path.read_bytes()).hexdigest(),
        }
        assert reading["digit"] != reading["runner_up"]
        assert 1 >= reading["probability"] >= reading["runner_up_probability"] >= 0
    predicted = np.array([reading["digit"] for reading in good]).reshape(-1, 2)  # png, jpg
    assert (predicted == expected[:, None]).mean() >= 0.8


def test_the_keras_archive_reads_as_the_litert_export_does(synthetic_model, tmp_path):
    model_path, _ = synthetic_model
    files = []
    for number, digit in enumerate(synthetic_digits(1, seed=8)[0]):
        files.append(tmp_path / f"{number}.npy")
        np.save(files[-1], digit)
    served = run_predict("--json", "--model", model_path, *files)
    through_keras = run_predict("--json", "--model", model_path.with_suffix(".keras"), *files)
    assert served.returncode == through_keras.returncode == 0, through_keras.stderr
    assert served.stderr == ""  # no start-up lines: neither TensorFlow's nor LiteRT's
    served, through_keras = json.loads(served.stdout), json.loads(through_keras.stdout)
    assert [r["digit"] for r in served] == [r["digit"] for r in through_keras]
    for one, other in zip(served, through_keras, strict=True):
        assert one["probability"] == pytest.approx(other["probability"], abs=1e-5)


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
    header, *lines = result.stdout.splitlines()
    assert header.startswith(f"read with {model_path} (md5 ")
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
    from mnist_pipeline.data.preprocessing import normalize_pixels

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


def predict_outside_the_project(folder: Path, *options: str) -> subprocess.CompletedProcess:
    picture = save(render_glyph(6, size=120), folder / "six.png")
    return subprocess.run(
        [sys.executable, "-m", "mnist_pipeline.predict", *options, picture.name],
        cwd=folder,
        env={"PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_outside_the_project_the_message_says_where_it_looked(tmp_path):
    result = predict_outside_the_project(tmp_path)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"predict: error: models/model.tflite: no trained model (looked in {tmp_path}/models); "
        "run `dvc repro` in the project first, or name the model with --model PATH"
    ]


@pytest.mark.parametrize("reference", ["mnist-mlp#prod", "mnist-mlp@v1.0.0", "HEAD"])
def test_outside_a_project_a_model_by_name_is_one_line_saying_so(tmp_path, reference):
    result = predict_outside_the_project(tmp_path, "--model", reference)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"predict: error: {reference}: no such model file, and no DVC project here to look it "
        f"up in (looked in {tmp_path}): run in the project, or name a model file"
    ]


@needs_the_pipelines_model
def test_real_mnist_digits_survive_presentation(tmp_path):
    from mnist_pipeline.reading.classifiers import classify, load_classifier

    originals = np.load(REPO / paths.RAW_DIR / "x_test.npy", mmap_mode="r")[:30]
    expected = classify(load_classifier(REPO / paths.SERVING_MODEL_FILE), list(originals))
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


def collected(folder: Path) -> list[str]:
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*.png"))


def test_label_and_save_add_the_digits_as_given_to_the_network(synthetic_model, tmp_path):
    model_path, _ = synthetic_model
    digits = synthetic_digits(1, seed=9)[0][:2]
    files = [tmp_path / "a.npy", tmp_path / "b.npy"]
    for file, digit in zip(files, digits, strict=True):
        np.save(file, digit)
    # The layout's name: the first 16 hex digits of the SHA-256 of the 28x28 uint8 pixels.
    names = [hashlib.sha256(digit.tobytes()).hexdigest()[:16] + ".png" for digit in digits]
    folder = tmp_path / "drawings"

    result = run_predict("--model", model_path, "--label", "0", "--save", folder, *files)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-2:] == [
        f"{file}: added as {folder / '0' / name}" for file, name in zip(files, names, strict=True)
    ]
    assert collected(folder) == [f"0/{name}" for name in sorted(names)]
    for digit, name in zip(digits, names, strict=True):
        np.testing.assert_array_equal(np.asarray(Image.open(folder / "0" / name)), digit)

    again = run_predict("--model", model_path, "--label", "0", "--save", folder, files[0])
    assert (
        again.stdout.splitlines()[-1] == f"{files[0]}: already there as {folder / '0' / names[0]}"
    )
    moved = run_predict("--model", model_path, "--label", "9", "--save", folder, files[0])
    assert moved.stdout.splitlines()[-1] == (
        f"{files[0]}: relabelled 0 -> 9, moved to {folder / '9' / names[0]}"
    )
    assert collected(folder) == [f"0/{names[1]}", f"9/{names[0]}"]


def test_with_json_the_saved_lines_go_to_stderr(synthetic_model, tmp_path):
    model_path, _ = synthetic_model
    np.save(tmp_path / "a.npy", synthetic_digits(1, seed=9)[0][5])
    folder = tmp_path / "drawings"
    result = run_predict("--model", model_path, "--json", "--label", "5", "--save", folder,
                         tmp_path / "a.npy")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert len(json.loads(result.stdout)) == 1
    assert error_lines(result.stderr) == []
    assert f"{tmp_path / 'a.npy'}: added as {folder / '5'}" in result.stderr
    assert len(collected(folder)) == 1


@pytest.mark.parametrize("label", ["10", "-1", "x", "", "07", "٣"])
def test_a_bad_label_is_one_line_and_saves_nothing(tmp_path, label):
    picture = save(render_glyph(6, size=120), tmp_path / "six.png")
    result = run_predict("--label", label, "--save", tmp_path / "drawings", picture)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.splitlines() == [
        f"predict: error: --label must be a digit 0-9, got {label!r}"
    ]
    assert not (tmp_path / "drawings").exists()


@pytest.mark.parametrize("options", [["--label", "3"], ["--save", "drawings"]])
def test_label_and_save_go_together(options):
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args([*options, "seven.png"])
    assert exit_.value.code == 2


@pytest.mark.parametrize("label", ["0", "9"])
def test_the_first_and_last_digits_are_labels(label):
    from mnist_pipeline.predict import parse_label

    assert parse_label(label) == int(label)


def test_an_unsure_reading_says_so_and_a_sure_one_does_not():
    from mnist_pipeline.predict import as_text
    from mnist_pipeline.reading.classifiers import Reading

    unsure = Reading(
        digit=2, probability=0.409, runner_up=3, runner_up_probability=0.2, unsure=True
    )
    sure = Reading(digit=7, probability=0.99, runner_up=1, runner_up_probability=0.01, unsure=False)
    assert as_text(Path("star.png"), unsure) == (
        "star.png: 2 (40.9%), runner-up 3 (20.0%); not sure this is a digit"
    )
    assert as_text(Path("seven.png"), sure) == "seven.png: 7 (99.0%), runner-up 1 (1.0%)"
