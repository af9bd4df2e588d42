import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mnist_pipeline.data.preprocessing import (
    check_prepared,
    join_before_validation,
    normalize_pixels,
    one_hot,
    prepare,
    prepare_collected,
    validated_rows,
)
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


def drawings(count: int) -> tuple[np.ndarray, np.ndarray]:
    """`count` drawings, the i-th all of pixel value i, labelled i % 10."""
    pixels = np.repeat(np.arange(count, dtype=np.uint8), 28 * 28).reshape(count, 28, 28)
    return pixels, np.arange(count, dtype=np.uint8) % 10


@pytest.mark.parametrize("repeats", [0, 1, 3, 100])
def test_prepare_collected_repeats_the_training_part_and_holds_out_the_field_set(repeats):
    pixels, labels = drawings(5)
    held_out = np.array([False, True, False, False, True])
    train, field = prepare_collected(pixels, labels, held_out, repeats)
    # Pixel value i / 255 in every column: the drawings 0, 2, 3 in that order, `repeats` times.
    assert train["x"].shape == (3 * repeats, 784) and train["x"].dtype == np.float32
    np.testing.assert_array_equal(train["x"][:, 0] * 255, np.array([0, 2, 3] * repeats))
    np.testing.assert_array_equal(train["y"].argmax(axis=1), np.array([0, 2, 3] * repeats))
    np.testing.assert_array_equal(field["x"][:, 5] * 255, [1, 4])
    assert field["y"].shape == (2, 10) and field["y"].argmax(axis=1).tolist() == [1, 4]
    assert train["y"].shape == (3 * repeats, 10)


def test_an_empty_collection_prepares_zero_rows_of_the_right_shapes():
    pixels, labels = drawings(0)
    train, field = prepare_collected(pixels, labels, np.zeros(0, bool), repeats=2)
    for part in (train, field):
        assert (part["x"].shape, part["y"].shape) == ((0, 784), (0, 10))
        assert part["x"].dtype == part["y"].dtype == np.float32


def test_no_repeats_prepare_the_same_bytes_whatever_the_collection():
    one = prepare_collected(*drawings(1), np.array([False]), repeats=0)[0]
    many = prepare_collected(*drawings(7), np.zeros(7, bool), repeats=0)[0]
    assert one["x"].tobytes() == many["x"].tobytes() == b""
    assert one["x"].shape == many["x"].shape


@pytest.mark.parametrize(
    ("samples", "split", "validated"),
    # Keras: the first floor(N * (1 - split)) train. 10 * 0.7 is 7.000000000000001 in floats.
    [(10, 0.0, 0), (10, 0.3, 3), (10, 0.25, 3), (60000, 0.1, 6000), (3, 0.999, 3)],
)
def test_validated_rows_are_the_end_keras_holds_out(samples, split, validated):
    assert validated_rows(samples, split) == validated


def test_nothing_to_join_returns_the_very_same_arrays():
    x, y = np.zeros((4, 784), np.float32), np.zeros((4, 10), np.float32)
    joined = join_before_validation(x, y, x[:0], y[:0], validation_split=0.5)
    assert joined[0] is x and joined[1] is y


@pytest.mark.parametrize(
    ("split", "order"),
    [
        (0.0, [0, 1, 2, 3, 4, 5, 6, 7, 100, 101]),  # appended: nothing validates
        # 10 rows, of which 2 validate (10 - floor(10 * 0.8)): MNIST's last two.
        (0.2, [0, 1, 2, 3, 4, 5, 100, 101, 6, 7]),
        (0.7, [0, 100, 101, 1, 2, 3, 4, 5, 6, 7]),  # 7 validate: MNIST's last 7
        (0.9, [100, 101, 0, 1, 2, 3, 4, 5, 6, 7]),  # 10 validate: more than MNIST's 8
    ],
)
def test_drawings_join_just_before_the_validation_part(split, order):
    x = np.arange(8, dtype=np.float32)[:, None]
    more = np.array([[100], [101]], np.float32)
    joined_x, joined_y = join_before_validation(x, x * 2, more, more * 2, split)
    assert joined_x[:, 0].tolist() == order
    assert joined_y[:, 0].tolist() == [2 * value for value in order]


ROOT = Path(__file__).resolve().parents[2]


def run_preprocess(folder: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "stages.preprocess"],
        cwd=folder,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
    )


def test_the_preprocess_stage_names_a_stray_file_of_the_collection_and_writes_nothing(
    tmp_path, tiny_mnist
):
    (tmp_path / "params.yaml").write_text((ROOT / "params.yaml").read_text())
    (tmp_path / "data" / "raw").mkdir(parents=True)
    for name, array in tiny_mnist.items():
        np.save(tmp_path / "data" / "raw" / f"{name}.npy", array)
    (tmp_path / "drawings" / "3").mkdir(parents=True)
    (tmp_path / "drawings" / "3" / "notes.txt").write_text("not a drawing")
    result = run_preprocess(tmp_path)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "preprocess: error: drawings/3/notes.txt: not a readable PNG (cannot identify image file "
        "'drawings/3/notes.txt')"
    ]
    assert sorted(path.name for path in (tmp_path / "data").iterdir()) == ["raw"]
    # Without the stray file (and an empty digit folder) the stage writes all three outputs.
    (tmp_path / "drawings" / "3" / "notes.txt").unlink()
    assert run_preprocess(tmp_path).returncode == 0
    assert np.load(tmp_path / "data" / "collected" / "field" / "x.npy").shape == (0, 784)
    assert np.load(tmp_path / "data" / "collected" / "train" / "y.npy").shape == (0, 10)
    assert np.load(tmp_path / "data" / "prepared" / "x_train.npy").shape == (300, 784)
