"""The train stage's speed devices: each on, each leaving results as they are."""

import subprocess
import sys

import numpy as np
import pytest

from mnist_pipeline.data.preprocessing import prepare
from mnist_pipeline.params import ConvnetParams, DenseParams, ModelParams, TrainParams
from mnist_pipeline.plumbing.errors import PipelineError
from mnist_pipeline.training.speedups import (
    TENSOR_ALIGNMENT,
    as_tensor,
    keras_without_pandas,
    load_aligned_arrays,
)

TINY_DENSE = ModelParams(dense=DenseParams(hidden_units=[16]))

# In a fresh interpreter: pandas refused inside the block, importable after it.
WITHOUT_PANDAS = """
import sys
from mnist_pipeline.training.speedups import keras_without_pandas
with keras_without_pandas():
    try:
        import pandas
    except ImportError:
        print("refused")
print("pandas" in sys.modules)
import pandas
print(pandas.DataFrame({"a": [1]}).shape)
"""


def test_keras_without_pandas_keeps_pandas_out_of_the_block_only():
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT_PANDAS], capture_output=True, text=True, check=True
    )
    assert result.stdout.split("\n") == ["refused", "False", "(1, 1)", ""]


def test_keras_without_pandas_leaves_a_loaded_pandas_as_it_is():
    import pandas

    with keras_without_pandas():
        import pandas as again
    assert again is pandas and sys.modules["pandas"] is pandas


@pytest.fixture
def saved_arrays(tmp_path, tiny_mnist):
    arrays = prepare(tiny_mnist)
    for name in ("x_train", "y_train"):
        np.save(tmp_path / f"{name}.npy", arrays[name])
    return tmp_path, arrays


def test_arrays_are_read_aligned_for_tensorflow_and_equal_to_the_files(saved_arrays):
    folder, arrays = saved_arrays
    loaded = load_aligned_arrays(folder, ("x_train", "y_train"))
    for name, array in loaded.items():
        assert array.ctypes.data % TENSOR_ALIGNMENT == 0
        assert array.dtype == arrays[name].dtype and np.array_equal(array, arrays[name])


def test_a_file_shorter_than_its_header_says_is_one_line(saved_arrays):
    folder, _ = saved_arrays
    path = folder / "x_train.npy"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(PipelineError, match=r"x_train.npy: (shorter|not a readable)"):
        load_aligned_arrays(folder, ("x_train",))


def test_a_missing_array_names_what_to_run(tmp_path):
    with pytest.raises(PipelineError, match=r"x_train.npy: missing; run `dvc repro`"):
        load_aligned_arrays(tmp_path, ("x_train",))


def test_an_aligned_array_becomes_a_tensor_without_a_copy(saved_arrays):
    folder, _ = saved_arrays
    array = load_aligned_arrays(folder, ("x_train",))["x_train"]
    tensor = as_tensor(array)
    array[0, 0] = 0.5  # seen through the tensor: they share memory
    assert float(tensor[0, 0]) == 0.5
    unaligned = np.ones(1001, np.float32)[1:]  # 4 bytes off any 64-byte boundary
    copied = as_tensor(unaligned)
    unaligned[0] = 7
    assert float(copied[0]) == 1.0


def test_fit_learns_the_same_weights_from_shared_tensors_as_from_numpy(tiny_mnist, monkeypatch):
    from mnist_pipeline.training import fit

    data = prepare(tiny_mnist)
    params = TrainParams(epochs=1, batch_size=50)
    shared, _ = fit.train_model(data["x_train"], data["y_train"], TINY_DENSE, params)
    monkeypatch.setattr(fit, "as_tensor", lambda array: array)  # Keras converts numpy itself
    plain, _ = fit.train_model(data["x_train"], data["y_train"], TINY_DENSE, params)
    for one, other in zip(shared.get_weights(), plain.get_weights(), strict=True):
        np.testing.assert_array_equal(one, other)


def traces_of_the_step(data: dict[str, np.ndarray]) -> int:
    """How many times train_model's fit traces Keras' training step."""
    from mnist_pipeline.training import fit
    from tests.support.traces import counting_traces

    with counting_traces() as traces:
        fit.train_model(data["x_train"], data["y_train"], TINY_DENSE, TrainParams(epochs=2))
    return traces[0]


def test_fit_traces_the_training_step_once(tiny_mnist):
    assert traces_of_the_step(prepare(tiny_mnist)) == 1


def test_without_building_first_fit_traces_the_step_twice(tiny_mnist, monkeypatch):
    """What build_before_fit saves: Keras creates the variables inside the first trace."""
    from mnist_pipeline.training import fit

    monkeypatch.setattr(fit, "build_before_fit", lambda model, x, y: None)
    assert traces_of_the_step(prepare(tiny_mnist)) == 2


@pytest.mark.parametrize(
    "model_params",
    [TINY_DENSE, ModelParams(kind="convnet", convnet=ConvnetParams(filters=[4]))],
    ids=["dense", "convnet"],
)
@pytest.mark.parametrize("optimizer", ["rmsprop", "adam"])
def test_building_before_fit_changes_no_weight_and_no_history(
    model_params, optimizer, tiny_mnist, monkeypatch
):
    from mnist_pipeline.training import fit

    data = prepare(tiny_mnist)
    params = TrainParams(optimizer=optimizer, epochs=2, batch_size=50, validation_split=0.2)
    built, built_history = fit.train_model(data["x_train"], data["y_train"], model_params, params)
    monkeypatch.setattr(fit, "build_before_fit", lambda model, x, y: None)
    plain, plain_history = fit.train_model(data["x_train"], data["y_train"], model_params, params)
    assert built_history == plain_history  # the metrics' first-image state did not linger
    for one, other in zip(built.get_weights(), plain.get_weights(), strict=True):
        np.testing.assert_array_equal(one, other)
    for one, other in zip(built.optimizer.variables, plain.optimizer.variables, strict=True):
        np.testing.assert_array_equal(np.asarray(one), np.asarray(other))
