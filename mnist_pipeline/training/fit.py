"""Train the network deterministically from params and keep its per-epoch history."""

import math
import sys
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from mnist_pipeline.network.model import build_model
from mnist_pipeline.params import ModelParams, TrainParams
from mnist_pipeline.training import kernels
from mnist_pipeline.training.fused_rmsprop import FusedRMSprop, as_keras_rmsprop
from mnist_pipeline.training.speedups import as_tensor, build_before_fit


def make_deterministic(params: TrainParams) -> None:
    """Seed Python, numpy and TensorFlow, make TensorFlow pick deterministic kernels, and check
    that it runs on the pinned kernel path and thread count (kernels.pin, before it loaded)."""
    kernels.check_pinned(params.threads, params.instruction_set)
    keras.utils.set_random_seed(params.seed)
    tf.config.experimental.enable_op_determinism()


def make_optimizer(params: TrainParams) -> keras.optimizers.Optimizer:
    # Named, like the layers, so its saved name does not count the optimizers made before it.
    config = {"learning_rate": params.learning_rate, "name": "optimizer"}
    if params.optimizer == "rmsprop":
        return FusedRMSprop(**config)
    return keras.optimizers.get({"class_name": params.optimizer, "config": config})


def train_model(
    x: np.ndarray,
    y: np.ndarray,
    model_params: ModelParams,
    train_params: TrainParams,
    callbacks: list[keras.callbacks.Callback] | None = None,
) -> tuple[keras.Sequential, dict[str, list[float]]]:
    """Train a fresh model on (x, y); return it with its per-epoch metrics (Keras' history).
    `callbacks` watch `fit` (benchmarks/step_profile.py times and traces it with them)."""
    make_deterministic(train_params)
    model = build_model(model_params)
    model.compile(
        optimizer=make_optimizer(train_params),
        loss="categorical_crossentropy",
        metrics=["accuracy"],
        # Speed (benchmarks/speedups.py): Keras' per-step Python overhead is paid once per call.
        steps_per_execution=train_params.steps_per_execution,
    )
    build_before_fit(model, x, y)  # Speed: fit traces its step once, not twice.
    history = model.fit(
        as_tensor(x),
        as_tensor(y),
        epochs=train_params.epochs,
        batch_size=train_params.batch_size,
        validation_split=train_params.validation_split,
        # A live progress bar on a terminal; one line per epoch in a log (dvc repro > file).
        verbose=1 if sys.stdout.isatty() else 2,
        callbacks=callbacks,
    )
    as_keras_rmsprop(model)
    return model, history.history


def save_history(history: dict[str, list[float]], train_file: Path, validation_file: Path) -> None:
    """Write the per-epoch metrics as CSV tables for `dvc plots`: one for the training data, one
    for the validation data (header only when train.validation_split is 0, so plots still draw).
    """
    names = sorted(name for name in history if not name.startswith("val_"))
    write_metrics(train_file, {name: history[name] for name in names})
    # Without validation every row is empty: the header alone remains, with every plotted field.
    write_metrics(validation_file, {name: history.get(f"val_{name}", []) for name in names})


def write_metrics(path: Path, columns: dict[str, list[float]]) -> None:
    """A CSV table of an `epoch` column (from 1) and `columns`, a row per epoch that has a value.

    Written as pandas' `to_csv` wrote it before (a missing value empty, floats as Python prints
    them), without pandas: the train stage does not load it (speedups.keras_without_pandas).
    """
    lines = [",".join(["epoch", *columns])]
    for epoch in range(max(map(len, columns.values()), default=0)):
        values = [float(v[epoch]) if epoch < len(v) else math.nan for v in columns.values()]
        if not all(math.isnan(value) for value in values):
            cells = ("" if math.isnan(value) else str(value) for value in values)
            lines.append(",".join([str(epoch + 1), *cells]))
    path.write_text("\n".join(lines) + "\n")
