"""Build the tutorial's network from params, train it deterministically, save it reproducibly."""

import json
import sys
import zipfile
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from mnist_pipeline.dataset import NUM_CLASSES
from mnist_pipeline.errors import PipelineError
from mnist_pipeline.files import TENSOR_ALIGNMENT, check_model_file
from mnist_pipeline.params import ModelParams, TrainParams
from mnist_pipeline.preprocessing import INPUT_SIZE

# A zip entry's earliest possible date: the .keras archive then carries no save time.
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def build_model(params: ModelParams) -> keras.Sequential:
    """Normalized pixels (784) -> Dense(units, activation) per hidden layer -> softmax (10)."""
    # Explicit layer names: Keras' automatic ones (dense_2, ...) count the models built so far in
    # the process, which would make a saved model depend on what ran before it.
    hidden = [
        keras.layers.Dense(units, activation=params.activation, name=f"hidden_{number}")
        for number, units in enumerate(params.hidden_units, 1)
    ]
    return keras.Sequential(
        [
            keras.Input(shape=(INPUT_SIZE,), name="pixels"),
            *hidden,
            keras.layers.Dense(NUM_CLASSES, activation="softmax", name="digit_probabilities"),
        ],
        name="mnist_mlp",
    )


def make_deterministic(seed: int) -> None:
    """Seed Python, numpy and TensorFlow, and make TensorFlow pick deterministic kernels."""
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


@keras.saving.register_keras_serializable(package="mnist_pipeline")
class FusedRMSprop(keras.optimizers.RMSprop):
    """Keras' RMSprop (no momentum, not centred), each update done by TensorFlow's fused kernel.

    Same arithmetic as the stock class (v = rho*v + (1-rho)*g^2; w -= lr*g/sqrt(v+eps)), but one
    kernel per variable instead of about eight element-wise ops. What that buys is modest: the
    train stage's training took 1.09x as long with the stock class (median of 7 runs on a 2-core
    AMD EPYC; single runs of 5 gave 1.01x-1.20x: `python -m benchmarks.fused_rmsprop`). Results
    match the stock class to float rounding, not bit for bit. Momentum and centring are refused
    rather than silently ignored.
    """

    def __init__(self, momentum: float = 0.0, centered: bool = False, **kwargs: object) -> None:
        if momentum or centered:
            raise ValueError(
                "FusedRMSprop implements RMSprop without momentum and not centred; "
                "use keras.optimizers.RMSprop for momentum or centered"
            )
        super().__init__(**kwargs)

    def build(self, var_list: list) -> None:
        if self.built:
            return
        super().build(var_list)
        # The kernel always writes a momentum slot; at momentum 0 it holds the last step.
        self._fused_steps = self.add_optimizer_variables(var_list, "fused_step")

    def update_step(
        self, gradient: tf.Tensor, variable: keras.Variable, learning_rate: float
    ) -> None:
        index, dtype = self._get_variable_index(variable), variable.dtype
        tf.raw_ops.ResourceApplyRMSProp(
            var=variable.handle,
            ms=self._velocities[index].value.handle,
            mom=self._fused_steps[index].value.handle,
            lr=tf.cast(learning_rate, dtype),
            rho=tf.constant(self.rho, dtype),
            momentum=tf.constant(0.0, dtype),
            epsilon=tf.constant(self.epsilon, dtype),
            grad=tf.cast(gradient, dtype),
        )


def with_stock_optimizer(model: keras.Model) -> None:
    """Recompile a model trained with FusedRMSprop to Keras' own RMSprop, carrying its state over.

    Saved that way, the model loads with plain `keras.models.load_model`, no import of ours needed,
    and training it further follows the same arithmetic.
    """
    fused = model.optimizer
    if not isinstance(fused, FusedRMSprop):
        return
    stock = keras.optimizers.RMSprop.from_config(fused.get_config())
    stock.build(model.trainable_variables)
    state = {variable.path: variable for variable in fused.variables}
    for variable in stock.variables:  # iterations and the velocities; the fused steps are not state
        variable.assign(state[variable.path])
    model.compile(
        optimizer=stock,
        loss=model.loss,
        metrics=["accuracy"],
        steps_per_execution=model.steps_per_execution,
    )


def make_optimizer(params: TrainParams) -> keras.optimizers.Optimizer:
    # Named, like the layers, so its saved name does not count the optimizers made before it.
    config = {"learning_rate": params.learning_rate, "name": "optimizer"}
    if params.optimizer == "rmsprop":
        return FusedRMSprop(**config)
    return keras.optimizers.get({"class_name": params.optimizer, "config": config})


def as_tensor(array: np.ndarray) -> tf.Tensor:
    """The array as a tensor, sharing its memory when TensorFlow allows (files.load_aligned_array
    reads arrays so), copied once otherwise.

    Given numpy arrays, Keras' fit makes tensors of them itself, with copies that cost the train
    stage about 0.5 s and 190 MB on MNIST (benchmarks/train_speed.py).
    """
    if (
        array.ctypes.data % TENSOR_ALIGNMENT == 0
        and array.flags.c_contiguous
        and array.flags.writeable
    ):
        return tf.experimental.dlpack.from_dlpack(array.__dlpack__())
    return tf.convert_to_tensor(array)


def train_model(
    x: np.ndarray,
    y: np.ndarray,
    model_params: ModelParams,
    train_params: TrainParams,
) -> tuple[keras.Sequential, dict[str, list[float]]]:
    """Train a fresh model on (x, y); return it with its per-epoch metrics (Keras' history)."""
    make_deterministic(train_params.seed)
    model = build_model(model_params)
    model.compile(
        optimizer=make_optimizer(train_params),
        loss="categorical_crossentropy",
        metrics=["accuracy"],
        # Several steps per call into TensorFlow: Keras' per-step Python overhead is paid once.
        steps_per_execution=train_params.steps_per_execution,
    )
    history = model.fit(
        as_tensor(x),
        as_tensor(y),
        epochs=train_params.epochs,
        batch_size=train_params.batch_size,
        validation_split=train_params.validation_split,
        # A live progress bar on a terminal; one line per epoch in a log (dvc repro > file).
        verbose=1 if sys.stdout.isatty() else 2,
    )
    with_stock_optimizer(model)
    return model, history.history


def save_history(history: dict[str, list[float]], train_file: Path, validation_file: Path) -> None:
    """Write the per-epoch metrics as CSV tables for `dvc plots`: one for the training data, one
    for the validation data (header only when train.validation_split is 0, so plots still draw).
    """
    table = pd.DataFrame(history).sort_index(axis=1)
    table.index = pd.RangeIndex(1, len(table) + 1, name="epoch")
    is_validation = table.columns.str.startswith("val_")
    train = table.loc[:, ~is_validation]
    validation = table.loc[:, is_validation].rename(columns=lambda name: name.removeprefix("val_"))
    train.to_csv(train_file)
    # Without validation every row is empty: the header alone remains, with every plotted field.
    validation.reindex(columns=train.columns).dropna(how="all").to_csv(validation_file)


def load_model(path: Path) -> keras.Model:
    """Load the trained model, with a clear error if the pipeline has not made it yet."""
    check_model_file(path)
    try:
        return keras.models.load_model(path)
    # A zip that is no Keras archive fails in several ways, depending on what it lacks.
    except (ValueError, OSError, KeyError, TypeError, zipfile.BadZipFile) as error:
        raise PipelineError(f"{path}: not a loadable Keras model ({error})") from None


def save_model(model: keras.Model, path: Path) -> None:
    """Save as a .keras archive whose bytes depend only on the model.

    Keras stamps the save time into metadata.json and each zip entry (keras-team/keras#15948), and
    numbers shared objects in config.json by their memory address (keras-team/keras#23256). The
    archive is rewritten without dates and with those ids renumbered; load_model reads it as usual.
    """
    model.save(path)
    with zipfile.ZipFile(path) as archive:
        entries = [(info, archive.read(info)) for info in archive.infolist()]
    with zipfile.ZipFile(path, "w") as archive:
        for info, data in entries:
            if info.filename == "metadata.json":
                metadata = json.loads(data)
                metadata.pop("date_saved", None)
                data = json.dumps(metadata).encode()
            elif info.filename == "config.json":
                data = json.dumps(renumber_shared_objects(json.loads(data), {})).encode()
            entry = zipfile.ZipInfo(info.filename, date_time=ZIP_EPOCH)
            entry.compress_type = info.compress_type
            entry.external_attr = 0o644 << 16
            archive.writestr(entry, data)


def renumber_shared_objects(config: object, numbers: dict[int, int]) -> object:
    """Replace each `shared_object_id` with 1, 2, ... in order of first appearance."""
    if isinstance(config, list):
        return [renumber_shared_objects(item, numbers) for item in config]
    if isinstance(config, dict):
        return {
            key: numbers.setdefault(value, len(numbers) + 1)
            if key == "shared_object_id"
            else renumber_shared_objects(value, numbers)
            for key, value in config.items()
        }
    return config
