"""Reading digits: the LiteRT reader (no TensorFlow), the Keras one, and models that are neither."""

import logging
import subprocess
import sys

import numpy as np
import pytest

from mnist_pipeline.plumbing.errors import ModelFileError, PipelineError
from mnist_pipeline.reading import classifiers
from mnist_pipeline.reading.classifiers import (
    LiteRTClassifier,
    Reading,
    classify,
    load_classifier,
    top_two,
)


@pytest.fixture(scope="module")
def models(tmp_path_factory, tiny_mnist):
    """A small trained Keras model, saved, and its LiteRT export; plus a model of another shape."""
    import keras

    from mnist_pipeline.data.preprocessing import prepare
    from mnist_pipeline.network.archive import save_model
    from mnist_pipeline.network.model import build_model
    from mnist_pipeline.params import DenseParams, ModelParams, TrainParams
    from mnist_pipeline.training.export import export_for_serving
    from mnist_pipeline.training.fit import train_model

    folder = tmp_path_factory.mktemp("models")
    data = prepare(tiny_mnist)
    model, _ = train_model(
        data["x_train"],
        data["y_train"],
        ModelParams(dense=DenseParams(hidden_units=[16])),
        TrainParams(epochs=2),
    )
    save_model(model, folder / "model.keras")
    export_for_serving(model, folder / "model.tflite", data["x_train"])
    # Wrong on both sides, on the input side alone, on the output side alone.
    for name, takes, gives in (("other", 5, 3), ("five-pixels", 5, 10), ("three-digits", 784, 3)):
        other = keras.Sequential([keras.Input(shape=(takes,)), keras.layers.Dense(gives)])
        other.export(str(folder / f"{name}.tflite"), format="litert", verbose=False)
        other.save(folder / f"{name}.keras")
    save_model(
        build_model(ModelParams(dense=DenseParams(hidden_units=[4]))), folder / "untrained.keras"
    )
    return folder, model, data["x_test"]


def test_top_two_names_the_two_most_probable_digits():
    probabilities = np.array([0.05, 0.6, 0.0, 0.25, 0.1, 0, 0, 0, 0, 0], np.float32)
    assert top_two(probabilities) == Reading(
        1, pytest.approx(0.6), 3, pytest.approx(0.25), unsure=True
    )
    reading = Reading(
        digit=7, probability=0.12345678, runner_up=1, runner_up_probability=0.1, unsure=True
    )
    assert reading.as_dict() == {
        "digit": 7,
        "probability": 0.123457,
        "runner_up": 1,
        "runner_up_probability": 0.1,
        "unsure": True,
    }


@pytest.mark.parametrize("nudge, unsure", [(0.0, False), (-1e-6, True)])
def test_a_reading_is_unsure_just_below_the_threshold_and_sure_at_it(nudge, unsure):
    first = np.float32(classifiers.UNSURE_BELOW + nudge)
    probabilities = np.array([first, 1 - first] + [0] * 8, np.float32)
    assert top_two(probabilities).unsure is unsure


def test_ties_go_to_the_lower_digit():
    reading = top_two(np.full(10, 0.1, np.float32))
    assert (reading.digit, reading.runner_up) == (0, 1)


def test_classify_hands_the_model_normalized_pixels():
    seen = []
    digit = np.arange(784, dtype=np.uint16).reshape(28, 28).astype(np.uint8)
    classify(lambda pixels: seen.append(pixels) or np.zeros((len(pixels), 10)), [digit, digit])
    assert seen[0].dtype == np.float32 and seen[0].shape == (2, 784)
    np.testing.assert_array_equal(seen[0][0], digit.reshape(784).astype(np.float32) / 255)


def test_the_litert_export_reads_as_keras_does_at_any_batch_size(models):
    folder, model, x_test = models
    classifier = load_classifier(folder / "model.tflite")
    assert isinstance(classifier, LiteRTClassifier)
    expected = np.asarray(model(x_test, training=False))
    for rows in (slice(0, 100), slice(5, 6), slice(0, 100), slice(7, 10)):
        probabilities = classifier(x_test[rows])
        assert probabilities.shape == expected[rows].shape
        np.testing.assert_allclose(probabilities, expected[rows], atol=1e-5)
        assert np.array_equal(probabilities.argmax(1), expected[rows].argmax(1))


def test_a_keras_archive_is_read_through_keras_and_says_so(models, caplog):
    folder, model, x_test = models
    with caplog.at_level(logging.DEBUG, logger="mnist_pipeline.reading.classifiers"):
        classifier = load_classifier(folder / "model.keras")
    assert "read through Keras and TensorFlow" in caplog.text
    np.testing.assert_array_equal(classifier(x_test[:10]), np.asarray(model(x_test[:10])))


def test_reading_a_litert_model_imports_no_tensorflow(models):
    folder, model, x_test = models
    np.save(folder / "pixels.npy", x_test[:3])
    code = (
        "import sys; import numpy as np; from pathlib import Path\n"
        "from mnist_pipeline.reading.classifiers import load_classifier\n"
        f"classifier = load_classifier(Path({str(folder / 'model.tflite')!r}))\n"
        f"print(classifier(np.load({str(folder / 'pixels.npy')!r})).argmax(1).tolist())\n"
        "print(sorted({'tensorflow', 'keras'} & {m.split('.')[0] for m in sys.modules}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    digits, imported = result.stdout.splitlines()
    assert digits == str(np.asarray(model(x_test[:3])).argmax(1).tolist())
    assert imported == "[]"
    assert result.stderr == ""  # not even LiteRT's INFO line


def write_truncated(path, model):
    path.write_bytes(model.read_bytes()[:20_000])


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (lambda path, folder: path.write_bytes(b""), "not a LiteRT model (no TFL3 flatbuffer)"),
        (
            lambda path, folder: path.write_bytes(np.random.default_rng(0).bytes(50_000)),
            "not a LiteRT model (no TFL3 flatbuffer)",
        ),
        (
            lambda path, folder: write_truncated(path, folder / "model.tflite"),
            "damaged: a LiteRT model cut short or corrupted",
        ),
        (
            lambda path, folder: path.write_bytes((folder / "model.keras").read_bytes()),
            "a zip archive, not a LiteRT model (a Keras model is read as one if named *.keras)",
        ),
    ],
    ids=["empty", "random-bytes", "truncated", "renamed-keras"],
)
def test_a_file_that_is_no_litert_model_is_a_model_file_error_naming_it(
    models, tmp_path, make, problem
):
    path = tmp_path / "model.tflite"
    make(path, models[0])
    with pytest.raises(ModelFileError) as error:
        load_classifier(path)
    assert str(error.value) == f"{path}: {problem}"  # the command adds what makes a model


@pytest.mark.parametrize("suffix", [".tflite", ".keras"])
@pytest.mark.parametrize(
    ("name", "takes", "gives"),
    [("other", 5, 3), ("five-pixels", 5, 10), ("three-digits", 784, 3)],
)
def test_a_model_of_another_shape_is_refused_at_load(models, suffix, name, takes, gives):
    path = models[0] / f"{name}{suffix}"
    with pytest.raises(PipelineError) as error:
        load_classifier(path)
    assert str(error.value) == (
        f"{path}: not a digit classifier (takes ({takes}) float32, gives ({gives}) float32 per "
        "image; expected 784 float32 pixels -> 10 float32 digit probabilities)"
    )


def test_an_untrained_but_well_shaped_keras_model_loads(models):
    classifier = load_classifier(models[0] / "untrained.keras")
    assert classifier(np.zeros((2, 784), np.float32)).shape == (2, 10)


# Each command that reads digits, as run in a folder holding digit.npy.
COMMANDS = {
    "predict": ["mnist_pipeline.predict", "digit.npy"],
    "mnist-web": ["mnist_pipeline.web", "--port=0"],
}


@pytest.mark.parametrize("prog", COMMANDS)
def test_the_commands_refuse_a_model_wrong_on_its_input_side_alone(models, tmp_path, prog):
    path = models[0] / "five-pixels.tflite"
    np.save(tmp_path / "digit.npy", np.zeros((28, 28), np.uint8))
    result = subprocess.run(
        [sys.executable, "-m", *COMMANDS[prog], "--model", str(path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"{prog}: error: {path}: not a digit classifier (takes (5) float32, gives (10) float32 "
        "per image; expected 784 float32 pixels -> 10 float32 digit probabilities)"
    ]
