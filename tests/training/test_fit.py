import hashlib
import subprocess
import sys

import keras
import numpy as np
import pytest

from mnist_pipeline.data.preprocessing import prepare
from mnist_pipeline.network.archive import load_model, save_model
from mnist_pipeline.params import DenseParams, ModelParams, TrainParams
from mnist_pipeline.reading.classifiers import LiteRTClassifier
from mnist_pipeline.training.export import EXPORT_TOLERANCE, export_for_serving
from mnist_pipeline.training.fit import save_history, train_model


@pytest.fixture(scope="module")
def trained(tiny_mnist, tmp_path_factory):
    """Train twice with the same seed, saving each model and history."""
    data = prepare(tiny_mnist)
    params = TrainParams(epochs=2, batch_size=32, validation_split=0.2)
    runs = []
    for run in range(2):
        folder = tmp_path_factory.mktemp(f"run{run}")
        model, history = train_model(data["x_train"], data["y_train"], ModelParams(), params)
        save_model(model, folder / "model.keras")
        save_history(history, folder / "train.csv", folder / "validation.csv")
        runs.append(folder)
    return data, runs


def test_same_seed_gives_byte_identical_model_and_history(trained):
    _, (first, second) = trained
    for name in ("model.keras", "train.csv", "validation.csv"):
        assert (first / name).read_bytes() == (second / name).read_bytes(), name


def test_the_saved_model_has_learned_the_synthetic_classes(trained):
    data, (folder, _) = trained
    model = load_model(folder / "model.keras")
    assert model.count_params() == 407_050
    # The synthetic classes are easy: two epochs learn them.
    accuracy = np.mean(
        model.predict(data["x_test"], verbose=0).argmax(1) == data["y_test"].argmax(1)
    )
    assert accuracy > 0.9


def test_history_has_a_row_per_epoch_for_training_and_validation(trained):
    _, (folder, _) = trained
    for name in ("train.csv", "validation.csv"):
        lines = (folder / name).read_text().splitlines()
        assert lines[0] == "epoch,accuracy,loss"
        assert [line.split(",")[0] for line in lines[1:]] == ["1", "2"]
    assert (folder / "train.csv").read_text() != (folder / "validation.csv").read_text()


def test_without_validation_the_validation_table_is_header_only(tmp_path):
    save_history({"loss": [0.5, 0.25], "accuracy": [0.75, 1.0]}, tmp_path / "t", tmp_path / "v")
    assert (tmp_path / "t").read_text() == "epoch,accuracy,loss\n1,0.75,0.5\n2,1.0,0.25\n"
    assert (tmp_path / "v").read_text() == "epoch,accuracy,loss\n"


@pytest.mark.parametrize(
    "history",
    [
        {"loss": [0.5, 0.25], "accuracy": [0.75, 1.0], "val_loss": [0.6, 0.3],
         "val_accuracy": [0.5, 0.875]},
        {"loss": [float("nan"), 1e-05, 123456789.0], "accuracy": [0.1, 0.2, 0.3]},
        {"loss": [0.5, 0.25, 0.125], "accuracy": [0.5, 0.5, 0.5],
         "val_loss": [float("nan"), 0.25, float("nan")], "val_accuracy": [float("nan"), 0.5, 0.25]},
    ],
)  # fmt: skip
def test_history_tables_are_the_bytes_pandas_wrote(history, tmp_path):
    import pandas as pd

    # The tables as pandas wrote them before save_history did without it.
    table = pd.DataFrame(history).sort_index(axis=1)
    table.index = pd.RangeIndex(1, len(table) + 1, name="epoch")
    is_validation = table.columns.str.startswith("val_")
    train = table.loc[:, ~is_validation]
    validation = table.loc[:, is_validation].rename(columns=lambda name: name.removeprefix("val_"))
    train.to_csv(tmp_path / "pandas_train.csv")
    validation.reindex(columns=train.columns).dropna(how="all").to_csv(tmp_path / "pandas_val.csv")
    save_history(history, tmp_path / "train.csv", tmp_path / "validation.csv")
    assert (tmp_path / "train.csv").read_bytes() == (tmp_path / "pandas_train.csv").read_bytes()
    assert (tmp_path / "validation.csv").read_bytes() == (tmp_path / "pandas_val.csv").read_bytes()


def test_a_different_seed_gives_different_weights(tiny_mnist):
    data = prepare(tiny_mnist)
    model_params = ModelParams(dense=DenseParams(hidden_units=[8]))
    weights = [
        train_model(data["x_train"][:64], data["y_train"][:64], model_params,
                    TrainParams(epochs=1, seed=seed))[0].get_weights()[0]
        for seed in (1, 2)
    ]  # fmt: skip
    assert not np.array_equal(*weights)


def test_keras_is_the_version_pinned(request):
    pinned = (request.config.rootpath / "requirements.txt").read_text()
    assert f"keras=={keras.__version__}" in pinned


def test_saved_model_loads_with_plain_keras_and_keeps_its_optimizer_state(trained, tmp_path):
    _, (folder, _) = trained
    code = (
        "import keras; m = keras.models.load_model('model.keras');"
        "print(type(m.optimizer).__name__, int(m.optimizer.iterations))"
    )
    (tmp_path / "model.keras").write_bytes((folder / "model.keras").read_bytes())
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, env={}
    )
    assert result.returncode == 0, result.stderr
    # 240 training images (20% held out), batches of 32, two epochs: 8 steps each.
    assert result.stdout.split() == ["RMSprop", "16"]


def test_steps_per_execution_changes_speed_not_results(tiny_mnist):
    data = prepare(tiny_mnist)
    weights = []
    for steps in (1, 7):
        params = TrainParams(epochs=1, batch_size=20, steps_per_execution=steps)
        model, _ = train_model(
            data["x_train"],
            data["y_train"],
            ModelParams(dense=DenseParams(hidden_units=[16])),
            params,
        )
        weights.append(model.get_weights())
    for one_step, seven_steps in zip(*weights, strict=True):
        np.testing.assert_array_equal(one_step, seven_steps)


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "nadam", "sgd"])
def test_every_optimizer_trains_saves_and_loads(optimizer, tiny_mnist, tmp_path):
    data = prepare(tiny_mnist)
    params = TrainParams(optimizer=optimizer, learning_rate=0.01, epochs=1, batch_size=50)
    model, history = train_model(
        data["x_train"], data["y_train"], ModelParams(dense=DenseParams(hidden_units=[16])), params
    )
    assert type(model.optimizer).__name__.lower() == optimizer
    assert int(model.optimizer.iterations) == 6  # 300 images in batches of 50
    assert np.isfinite(history["loss"]).all()
    save_model(model, tmp_path / "model.keras")
    assert type(load_model(tmp_path / "model.keras").optimizer).__name__.lower() == optimizer


@pytest.mark.parametrize("split", [0.0, 0.1, 0.99])
def test_validation_split_from_none_to_all_but_a_few_images(split, tiny_mnist):
    data = prepare(tiny_mnist)
    params = TrainParams(epochs=1, batch_size=300, validation_split=split)
    model, history = train_model(
        data["x_train"], data["y_train"], ModelParams(dense=DenseParams(hidden_units=[8])), params
    )
    assert int(model.optimizer.iterations) == 1  # one batch of whatever is left to train on
    assert ("val_loss" in history) == (split > 0)


def train_and_save(data, model_params, folder):
    """Train `model_params` one epoch on `data`, saved and exported into `folder`."""
    model, history = train_model(
        data["x_train"], data["y_train"], model_params, TrainParams(epochs=1)
    )
    folder.mkdir()
    save_model(model, folder / "model.keras")
    export_for_serving(model, folder / "model.tflite", data["x_train"])
    return model, history


@pytest.mark.parametrize(("kind", "name"), [("dense", "mnist_mlp"), ("convnet", "mnist_convnet")])
def test_each_kind_trains_saves_reloads_and_exports(kind, name, tiny_mnist, tmp_path):
    data = prepare(tiny_mnist)
    model, history = train_and_save(data, ModelParams(kind=kind), tmp_path / kind)
    assert np.isfinite(history["loss"]).all()
    reloaded = load_model(tmp_path / kind / "model.keras")
    assert reloaded.name == name and reloaded.count_params() == model.count_params()
    expected = np.asarray(model(data["x_test"], training=False))
    # The same computation on the reloaded weights: the same bits (batched `predict` is another
    # computation, which agrees only to rounding, and differently on another CPU).
    np.testing.assert_array_equal(np.asarray(reloaded(data["x_test"], training=False)), expected)
    # The export reads the flat pixels, as predict and the web page hand them, and agrees.
    exported = LiteRTClassifier(tmp_path / kind / "model.tflite")(data["x_test"])
    np.testing.assert_allclose(exported, expected, rtol=0, atol=EXPORT_TOLERANCE)


# SHA-256 of the model the default params (dense) give trained one epoch on the tiny set, on the
# pinned kernel path (kernels.pin): the same on every x86-64 CPU with AVX2. Made on an AMD EPYC
# with AVX-512 (the AVX2 cap in force) and checked on QEMU's EPYC-Rome and Haswell CPUs, which
# have no AVX-512 (docs/reproducibility.md#one-kernel-path-on-every-x86-64-cpu).
DENSE_DEFAULT_SHA256 = {
    "model.keras": "e1f428efbe8a2e1ec533f1015a2da994aa6ceeb401986a125c7843685812d7dd",
    "model.tflite": "e4a8e04d292c8352bd62c3e6ac13479a03e57f28b785620ebf6fab175986ddd2",
}


def test_the_default_dense_network_gives_the_pinned_paths_bytes(tiny_mnist, tmp_path):
    train_and_save(prepare(tiny_mnist), ModelParams(), tmp_path / "dense")
    digests = {
        name: hashlib.sha256((tmp_path / "dense" / name).read_bytes()).hexdigest()
        for name in DENSE_DEFAULT_SHA256
    }
    assert digests == DENSE_DEFAULT_SHA256


def test_a_convnet_trained_twice_with_the_same_seed_gives_the_same_bytes(tiny_mnist, tmp_path):
    data = prepare(tiny_mnist)
    for run in ("first", "second"):
        train_and_save(data, ModelParams(kind="convnet"), tmp_path / run)
    for name in ("model.keras", "model.tflite"):
        assert (tmp_path / "first" / name).read_bytes() == (tmp_path / "second" / name).read_bytes()
