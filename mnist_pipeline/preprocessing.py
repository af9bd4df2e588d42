"""Turn uint8 images and labels into what the network eats. Numpy only: no TensorFlow import.

Pixels stay uint8: the tutorial's scaling (pixel / 255) is the model's first layer instead (see
training.build_model). The prepared data is then a quarter of the size, and training reads it
faster and in less memory; and the saved model takes raw pixels, so no user of it (predict, say)
can forget to scale them.
"""

import numpy as np

from mnist_pipeline.dataset import NUM_CLASSES
from mnist_pipeline.errors import PipelineError

INPUT_SIZE = 28 * 28
PIXEL_SCALE = 1 / 255  # maps uint8 pixels to [0, 1], as the tutorial does


def flatten_pixels(images: np.ndarray) -> np.ndarray:
    """uint8 images (N, 28, 28) -> uint8 (N, 784), the network's input."""
    return images.reshape(len(images), INPUT_SIZE)


def one_hot(labels: np.ndarray) -> np.ndarray:
    """Labels (N,) in 0-9 -> float32 (N, 10) with a single 1 per row."""
    return np.eye(NUM_CLASSES, dtype=np.float32)[labels]


def check_prepared(x: np.ndarray, y: np.ndarray, origin: str) -> None:
    """Raise PipelineError unless x is uint8 (N, 784) and y float32 one-hot (N, 10), N > 0."""
    if x.dtype != np.uint8 or x.ndim != 2 or x.shape[1] != INPUT_SIZE or len(x) == 0:
        raise PipelineError(
            f"{origin}: pixels must be uint8 of shape (N, 784), got {x.dtype} {x.shape}"
        )
    if y.dtype != np.float32 or y.shape != (len(x), NUM_CLASSES):
        raise PipelineError(
            f"{origin}: labels must be float32 of shape ({len(x)}, 10), got {y.dtype} {y.shape}"
        )
    if not np.all(y.sum(axis=1) == 1) or not np.all((y == 0) | (y == 1)):
        raise PipelineError(f"{origin}: labels are not one-hot")


def prepare(raw: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The four raw arrays -> x_train, y_train, x_test, y_test ready for training."""
    return {
        "x_train": flatten_pixels(raw["x_train"]),
        "y_train": one_hot(raw["y_train"]),
        "x_test": flatten_pixels(raw["x_test"]),
        "y_test": one_hot(raw["y_test"]),
    }
