import numpy as np
import pytest

from mnist_pipeline.data.preprocessing import check_prepared, normalize_pixels, one_hot, prepare
from mnist_pipeline.plumbing.errors import PipelineError


def test_normalize_pixels_is_the_tutorials_scaling_bit_for_bit():
    images = np.arange(3 * 28 * 28, dtype=np.int64).reshape(3, 28, 28).astype(np.uint8)
    normalized = normalize_pixels(images)
    assert normalized.shape == (3, 784) and normalized.dtype == np.float32
    # The Keras tutorial's own expression, byte for byte.
    tutorial = images.reshape(3, 784).astype("float32") / 255
    assert normalized.tobytes() == tutorial.tobytes()
    np.testing.assert_array_equal(normalized[1], images[1].ravel() / np.float32(255))
    assert normalized.min() == 0 and normalized.max() == 1
    np.testing.assert_array_equal(normalize_pixels(images.reshape(3, 784)), normalized)


def test_normalize_pixels_refuses_pixels_already_scaled():
    with pytest.raises(PipelineError, match="pixels must be uint8 to normalize, got float32"):
        normalize_pixels(np.zeros((1, 784), np.float32))


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
    np.testing.assert_array_equal(
        prepared["x_train"][7], normalize_pixels(tiny_mnist["x_train"][7:8])[0]
    )


def test_check_prepared_accepts_prepare_output_and_names_what_is_wrong(tiny_mnist):
    prepared = prepare(tiny_mnist)
    x, y = prepared["x_test"], prepared["y_test"]
    check_prepared(x, y, origin="data/prepared")
    bad = [
        (x.reshape(-1, 28, 28), y, r"pixels must be float32 of shape \(N, 784\)"),
        (x[:0], y[:0], r"pixels must be float32 of shape \(N, 784\), got float32 \(0, 784\)"),
        (x * 255, y, r"pixels must be within \[0, 1\]"),
        ((x * 255).astype(np.uint8), y, r"pixels must be float32 of shape \(N, 784\), got uint8"),
        (x, y[:-1], r"labels must be float32 of shape \(100, 10\)"),
        (x, y * 2, "labels are not one-hot"),
    ]
    for pixels, labels, message in bad:
        with pytest.raises(PipelineError, match=message):
            check_prepared(pixels, labels, origin="data/prepared")
