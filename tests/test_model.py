"""The network as built from params, saved reproducibly and loaded back, or refused clearly."""

import zipfile

import numpy as np
import pytest

from mnist_pipeline.errors import PipelineError
from mnist_pipeline.model import (
    EXPORT_TOLERANCE,
    build_model,
    check_export,
    export_for_serving,
    load_model,
    save_model,
)
from mnist_pipeline.params import ModelParams

HINT = "run `dvc repro` first"


def test_default_network_is_the_tutorials():
    model = build_model(ModelParams())
    assert model.count_params() == 407_050  # 784*512 + 512 + 512*10 + 10
    assert [layer.name for layer in model.layers] == ["hidden_1", "digit_probabilities"]
    assert [layer.units for layer in model.layers] == [512, 10]
    assert model.layers[0].activation.__name__ == "relu"
    assert model.layers[-1].activation.__name__ == "softmax"
    # It takes the normalized pixels as they are: no rescaling inside.
    assert model.input_shape == (None, 784) and model.inputs[0].dtype == "float32"


def test_hidden_units_set_the_depth_and_width():
    model = build_model(ModelParams(hidden_units=[256, 128], activation="tanh"))
    assert model.count_params() == (784 * 256 + 256) + (256 * 128 + 128) + (128 * 10 + 10)
    assert model.layers[0].activation.__name__ == "tanh"


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "model.keras"
    model = build_model(ModelParams(hidden_units=[4]))
    model.compile(optimizer="rmsprop", loss="categorical_crossentropy")
    model.optimizer.build(model.trainable_variables)  # its state is saved too
    save_model(model, path)
    return path


def test_the_archive_has_no_dates_and_loads(saved):
    with zipfile.ZipFile(saved) as archive:
        assert {info.date_time for info in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}
        assert b"date_saved" not in archive.read("metadata.json")
    assert load_model(saved).count_params() == 784 * 4 + 4 + 4 * 10 + 10


def write_zip(path, members):
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda path, model: None, f"no trained model; {HINT}"),
        (
            lambda path, model: path.write_bytes(model.read_bytes()[:5000]),
            "damaged: a zip archive cut short or corrupted, not a whole Keras model",
        ),
        (
            lambda path, model: path.write_bytes(bytes(range(256)) * 40),
            "not a Keras model (a .keras file is a zip archive, this is none)",
        ),
        (
            lambda path, model: write_zip(path, {"notes.txt": "a zip, but not a model"}),
            "not a Keras model (a zip archive without config.json and metadata.json)",
        ),
        (
            lambda path, model: write_zip(
                path, {"config.json": "{not json", "metadata.json": "{}", "model.weights.h5": ""}
            ),
            "not a loadable Keras model",
        ),
    ],
    ids=["missing", "truncated", "random-bytes", "other-zip", "broken-config"],
)
def test_a_file_that_is_no_model_is_one_line_saying_what_is_wrong(saved, tmp_path, make, message):
    path = tmp_path / "model.keras"
    make(path, saved)
    with pytest.raises(PipelineError) as error:
        load_model(path)
    line = str(error.value)
    assert line.startswith(f"{path}: ") and message in line and "\n" not in line


@pytest.fixture(scope="module")
def exported(tmp_path_factory, tiny_mnist):
    from mnist_pipeline.preprocessing import prepare

    folder = tmp_path_factory.mktemp("exported")
    model = build_model(ModelParams(hidden_units=[8]))
    pixels = prepare(tiny_mnist)["x_train"]
    export_for_serving(model, folder / "model.tflite", pixels)
    return folder / "model.tflite", model, pixels


def test_the_export_is_the_same_bytes_each_time(exported, tmp_path):
    path, model, pixels = exported
    export_for_serving(model, tmp_path / "again.tflite", pixels)
    assert (tmp_path / "again.tflite").read_bytes() == path.read_bytes()


def shifted(model, by: float):
    """A copy of `model` whose output layer's biases are all moved by `by`: the same digits,
    probabilities moved a little, as a different export of the model would."""
    import keras

    copy = keras.models.clone_model(model)
    weights = model.get_weights()
    weights[-1] = weights[-1] + np.float32(by) * np.arange(10, dtype=np.float32)
    copy.set_weights(weights)
    return copy


@pytest.mark.parametrize(("by", "agrees"), [(0.0, True), (1e-6, True), (3e-5, False)])
def test_an_export_that_disagrees_beyond_the_tolerance_is_refused(exported, by, agrees):
    path, model, pixels = exported
    other = shifted(model, by)
    difference = np.abs(np.asarray(other(pixels)) - np.asarray(model(pixels))).max()
    assert (difference <= EXPORT_TOLERANCE) == agrees  # each side of the bound
    if agrees:
        check_export(other, path, pixels)
    else:
        with pytest.raises(PipelineError) as error:
            check_export(other, path, pixels)
        assert str(error.value).startswith(
            f"{path}: the LiteRT export disagrees with the Keras model on 300 training images "
            "(0 read as another digit; probabilities up to"
        )


def test_an_export_that_reads_another_digit_is_refused(exported):
    path, model, pixels = exported
    with pytest.raises(PipelineError, match=r"on 300 training images \([1-9]\d* read as another"):
        check_export(build_model(ModelParams(hidden_units=[8])), path, pixels)
