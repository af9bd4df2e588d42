import numpy as np

from mnist_pipeline.preprocessing import one_hot, prepare, scale_pixels


def test_scale_pixels_flattens_and_divides_by_255():
    images = np.array([[[0, 255], [51, 102]]], dtype=np.uint8).repeat(14, 1).repeat(14, 2)
    scaled = scale_pixels(images)
    assert scaled.shape == (1, 784) and scaled.dtype == np.float32
    assert scaled.min() == 0 and scaled.max() == 1
    np.testing.assert_array_equal(np.unique(scaled), np.float32([0, 0.2, 0.4, 1]))


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
        np.rint(prepared["x_train"][7] * 255).astype(np.uint8), tiny_mnist["x_train"][7].ravel()
    )
