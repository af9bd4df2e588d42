"""The .keras archive: saved reproducibly and loaded back, or refused clearly."""

import zipfile

import pytest

from mnist_pipeline.network.archive import load_model, save_model
from mnist_pipeline.network.model import build_model
from mnist_pipeline.params import DenseParams, ModelParams
from mnist_pipeline.plumbing.errors import ModelFileError, PipelineError


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "model.keras"
    model = build_model(ModelParams(dense=DenseParams(hidden_units=[4])))
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
    ids=["truncated", "random-bytes", "other-zip", "broken-config"],
)
def test_a_file_that_is_no_model_is_one_line_saying_what_is_wrong(saved, tmp_path, make, message):
    path = tmp_path / "model.keras"
    make(path, saved)
    with pytest.raises(PipelineError) as error:
        load_model(path)
    line = str(error.value)
    assert line.startswith(f"{path}: ") and message in line and "\n" not in line
    # A file that is no Keras archive is the error the commands add what makes a model to.
    assert isinstance(error.value, ModelFileError) == (message != "not a loadable Keras model")
