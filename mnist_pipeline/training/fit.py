"""Train the network deterministically from params and keep its per-epoch history."""

import sys
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from mnist_pipeline.network.model import build_model
from mnist_pipeline.params import ModelParams, TrainParams
from mnist_pipeline.training import kernels
from mnist_pipeline.training.fused_rmsprop import FusedRMSprop, as_keras_rmsprop
from mnist_pipeline.training.speedups import as_tensor


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
) -> tuple[keras.Sequential, dict[str, list[float]]]:
    """Train a fresh model on (x, y); return it with its per-epoch metrics (Keras' history)."""
    make_deterministic(train_params)
    model = build_model(model_params)
    model.compile(
        optimizer=make_optimizer(train_params),
        loss="categorical_crossentropy",
        metrics=["accuracy"],
        # Speed (benchmarks/speedups.py): Keras' per-step Python overhead is paid once per call.
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
    as_keras_rmsprop(model)
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
