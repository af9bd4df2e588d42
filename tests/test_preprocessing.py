import numpy as np
import pytest

from mnist_pipeline.errors import PipelineError
from mnist_pipeline.preprocessing import check_prepared, flatten_pixels, one_hot, prepare


def test_flatten_pixels_keeps_uint8_rows_in_order():
    images = np.arange(2 * 28 * 28, dtype=np.int64).reshape(2, 28, 28).astype(np.uint8)
    flat = flatten_pixels(images)
    assert flat.shape == (2, 784) and flat.dtype == np.uint8
    np.testing.assert_array_equal(flat[1], images[1].ravel())


def test_one_hot_puts_a_single_one_at_the_label():
    encoded = one_hot(np.array([3, 0, 9], dtype=np.uint8))
    assert encoded.dtype == np.float32 and encoded.shape == (3, 10)
    np.testing.assert_array_equal(encoded.argmax(axis=1), [3, 0, 9])
    np.testing.assert_array_equal(encoded.sum(axis=1), [1, 1, 1])


def test_prepare_keeps_the_order_of_images_and_labels(tiny_mnist):
    prepared = prepare(tiny_mnist)
    assert {name: array.shape for name, array in prepared.items()} == {
        "x_train": (300, 784),
        "y_train": (300, 10),
        "x_test": (100, 784),
        "y_test": (100, 10),
    }
    np.testing.assert_array_equal(prepared["y_test"].argmax(axis=1), tiny_mnist["y_test"])
    np.testing.assert_array_equal(prepared["x_train"][7], tiny_mnist["x_train"][7].ravel())


def test_check_prepared_accepts_prepare_output_and_names_what_is_wrong(tiny_mnist):
    prepared = prepare(tiny_mnist)
    x, y = prepared["x_test"], prepared["y_test"]
    check_prepared(x, y, origin="data/prepared")
    bad = [
        (x.reshape(-1, 28, 28), y, r"pixels must be uint8 of shape \(N, 784\)"),
        (x[:0], y[:0], r"pixels must be uint8 of shape \(N, 784\), got uint8 \(0, 784\)"),
        (x, y[:-1], r"labels must be float32 of shape \(100, 10\)"),
        (x, y * 2, "labels are not one-hot"),
    ]
    for pixels, labels, message in bad:
        with pytest.raises(PipelineError, match=message):
            check_prepared(pixels, labels, origin="data/prepared")
