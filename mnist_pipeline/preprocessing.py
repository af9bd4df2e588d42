"""Turn uint8 images and labels into what the network eats. Numpy only: no TensorFlow import."""

import numpy as np

from mnist_pipeline.dataset import NUM_CLASSES, Arrays

INPUT_SIZE = 28 * 28


def scale_pixels(images: np.ndarray) -> np.ndarray:
    """uint8 images (N, 28, 28) -> float32 (N, 784) in [0, 1], pixel / 255 as in the tutorial."""
    return images.reshape(len(images), INPUT_SIZE).astype(np.float32) / 255


def one_hot(labels: np.ndarray) -> np.ndarray:
    """Labels (N,) in 0-9 -> float32 (N, 10) with a single 1 per row."""
    return np.eye(NUM_CLASSES, dtype=np.float32)[labels]


def prepare(raw: Arrays) -> Arrays:
    """The four raw arrays -> x_train, y_train, x_test, y_test ready for training."""
    return {
        "x_train": scale_pixels(raw["x_train"]),
        "y_train": one_hot(raw["y_train"]),
        "x_test": scale_pixels(raw["x_test"]),
        "y_test": one_hot(raw["y_test"]),
    }
