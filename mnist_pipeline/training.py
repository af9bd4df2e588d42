"""Build the tutorial's network from params, train it deterministically, save it reproducibly."""

import csv
import json
import os
import sys
import zipfile
from pathlib import Path

# Before TensorFlow loads: hide its C++ INFO lines (oneDNN and CPU-feature notices), keep warnings.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from mnist_pipeline.dataset import NUM_CLASSES
from mnist_pipeline.errors import PipelineError
from mnist_pipeline.params import ModelParams, TrainParams
from mnist_pipeline.preprocessing import INPUT_SIZE

# A zip entry's earliest possible date: the .keras archive then carries no save time.
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def build_model(params: ModelParams) -> keras.Sequential:
    """Input 784 -> Dense(units, activation) per hidden layer -> Dense(10, softmax)."""
    return keras.Sequential(
        [
            keras.Input(shape=(INPUT_SIZE,)),
            *(
                keras.layers.Dense(units, activation=params.activation)
                for units in params.hidden_units
            ),
            keras.layers.Dense(NUM_CLASSES, activation="softmax"),
        ],
        name="mnist_mlp",
    )


def make_deterministic(seed: int) -> None:
    """Seed Python, numpy and TensorFlow, and make TensorFlow pick deterministic kernels."""
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


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
        optimizer=keras.optimizers.get(
            {
                "class_name": train_params.optimizer,
                "config": {"learning_rate": train_params.learning_rate},
            }
        ),
        loss="categorical_crossentropy",
        metrics=["accuracy"],
    )
    history = model.fit(
        x,
        y,
        epochs=train_params.epochs,
        batch_size=train_params.batch_size,
        validation_split=train_params.validation_split,
        # A live progress bar on a terminal; one line per epoch in a log (dvc repro > file).
        verbose=1 if sys.stdout.isatty() else 2,
    )
    return model, history.history


def save_history(history: dict[str, list[float]], path: Path) -> None:
    """Write one CSV row per epoch (epoch, then each metric), the table `dvc plots` draws."""
    names = sorted(history)
    with path.open("w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["epoch", *names])
        for epoch, values in enumerate(zip(*(history[name] for name in names), strict=True), 1):
            writer.writerow([epoch, *values])


def load_model(path: Path) -> keras.Model:
    """Load the trained model, with a clear error if the pipeline has not made it yet."""
    if not path.is_file():
        raise PipelineError(f"{path}: no trained model; run `dvc repro` first")
    try:
        return keras.models.load_model(path)
    except (ValueError, OSError, zipfile.BadZipFile) as error:
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
