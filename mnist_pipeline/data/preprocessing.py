"""Turn uint8 images and labels into what the network eats. Numpy only: no TensorFlow import.

The one definition of the network's input: `normalize_pixels`, the tutorial's pixel / 255 in
float32. The preprocess stage applies it to MNIST, and `predict` (and the web page) to a user's
picture, so the model never sees pixels scaled any other way.
"""

import math

import numpy as np

from mnist_pipeline.data.dataset import IMAGE_SHAPE, NUM_CLASSES
from mnist_pipeline.plumbing.errors import PipelineError

INPUT_SIZE = IMAGE_SHAPE[0] * IMAGE_SHAPE[1]
INPUT_NAME = "pixels"  # the network's input, by name (TensorFlow Serving's named instances)


def normalize_pixels(images: np.ndarray) -> np.ndarray:
    """uint8 images (N, 28, 28) or (N, 784) -> float32 (N, 784) in [0, 1], the network's input.

    Bit for bit the tutorial's `images.reshape(N, 784).astype("float32") / 255`.
    """
    if images.dtype != np.uint8:
        raise PipelineError(f"pixels must be uint8 to normalize, got {images.dtype}")
    return images.reshape(len(images), INPUT_SIZE).astype(np.float32) / np.float32(255)


def one_hot(labels: np.ndarray) -> np.ndarray:
    """Labels (N,) in 0-9 -> float32 (N, 10) with a single 1 per row."""
    return np.eye(NUM_CLASSES, dtype=np.float32)[labels]


def check_prepared(x: np.ndarray, y: np.ndarray, origin: str) -> None:
    """Raise PipelineError unless x is float32 (N, 784) in [0, 1] and y float32 one-hot (N, 10)."""
    if x.dtype != np.float32 or x.ndim != 2 or x.shape[1] != INPUT_SIZE or len(x) == 0:
        raise PipelineError(
            f"{origin}: pixels must be float32 of shape (N, 784), got {x.dtype} {x.shape}"
        )
    if not (x.min() >= 0 and x.max() <= 1):  # also false for NaN
        raise PipelineError(f"{origin}: pixels must be within [0, 1] (normalized)")
    if y.dtype != np.float32 or y.shape != (len(x), NUM_CLASSES):
        raise PipelineError(
            f"{origin}: labels must be float32 of shape ({len(x)}, 10), got {y.dtype} {y.shape}"
        )
    if not np.all(y.sum(axis=1) == 1) or not np.all((y == 0) | (y == 1)):
        raise PipelineError(f"{origin}: labels are not one-hot")


def prepare(raw: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The four raw arrays -> x_train, y_train, x_test, y_test ready for training."""
    return {
        "x_train": normalize_pixels(raw["x_train"]),
        "y_train": one_hot(raw["y_train"]),
        "x_test": normalize_pixels(raw["x_test"]),
        "y_test": one_hot(raw["y_test"]),
    }


# The arrays of each part of the collection in data/collected/: normalized pixels, one-hot labels.
COLLECTED_NAMES = ("x", "y")


def prepare_collected(
    pixels: np.ndarray, labels: np.ndarray, held_out: np.ndarray, repeats: int
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The collection's drawings (uint8 (N, 28, 28), labels (N,), `held_out` (N,) bool, in the
    collection's order) -> its training part, repeated `repeats` times, and its held-out (field)
    part, each as MNIST's are prepared. At 0 repeats the training part has no rows, whatever the
    collection: its files stay the same bytes as drawings come and go."""
    kept = ~held_out
    return (
        {
            "x": normalize_pixels(np.tile(pixels[kept], (repeats, 1, 1))),
            "y": one_hot(np.tile(labels[kept], repeats)),
        },
        {"x": normalize_pixels(pixels[held_out]), "y": one_hot(labels[held_out])},
    )


def validated_rows(num_samples: int, validation_split: float) -> int:
    """How many rows at the end of a training set of `num_samples` Keras' `validation_split`
    holds out: Keras' own rule, the first floor(N * (1 - split)) train, the rest validate."""
    return num_samples - math.floor(num_samples * (1 - validation_split))


def join_before_validation(
    x: np.ndarray, y: np.ndarray, x_more: np.ndarray, y_more: np.ndarray, validation_split: float
) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) with (x_more, y_more) inserted just before the rows Keras will hold out to validate
    the joint set, so that the added rows are trained on and (x, y)'s end validates (unless more
    rows validate than (x, y) has: then they go first); with no rows to add, (x, y) themselves,
    untouched (the same training, to the byte)."""
    if len(x_more) == 0:
        return x, y
    at = max(0, len(x) - validated_rows(len(x) + len(x_more), validation_split))
    return (
        np.concatenate([x[:at], x_more, x[at:]]),
        np.concatenate([y[:at], y_more, y[at:]]),
    )
