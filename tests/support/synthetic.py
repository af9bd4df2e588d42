"""Small synthetic MNIST-format data, and writers for each file format a source can read."""

import gzip
import io
import pickle
import zipfile
from pathlib import Path

import numpy as np

from mnist_pipeline.data.preprocessing import prepare, prepare_collected
from mnist_pipeline.data.sources import IDX_FILES, PICKLE_MEMBER
from mnist_pipeline.plumbing import paths
from mnist_pipeline.plumbing.arrays import save_arrays

ROOT = Path(__file__).resolve().parents[2]


def make_digits(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """`count` noisy uint8 28x28 images whose class (0-9) is a bright horizontal band: learnable."""
    rng = np.random.default_rng(seed)
    labels = np.arange(count, dtype=np.uint8) % 10
    images = rng.integers(0, 40, size=(count, 28, 28), dtype=np.uint8)
    for image, label in zip(images, labels, strict=True):
        image[2 + 2 * label : 4 + 2 * label, 4:24] = 255
    return images, labels


def tiny_mnist_arrays() -> dict[str, np.ndarray]:
    x_train, y_train = make_digits(300, seed=1)
    x_test, y_test = make_digits(100, seed=2)
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}


def train_stage_folder(folder: Path, prepared: Path | None = None) -> Path:
    """`folder` laid out for the train stage alone: the workspace's params.yaml, data/prepared
    (the tiny set's, or a link to `prepared`), and the empty training part of a collection."""
    (folder / "data").mkdir(parents=True, exist_ok=True)
    (folder / paths.PARAMS_FILE).write_bytes((ROOT / paths.PARAMS_FILE).read_bytes())
    if prepared:
        (folder / paths.PREPARED_DIR).symlink_to(prepared)
    else:
        save_arrays(folder / paths.PREPARED_DIR, prepare(tiny_mnist_arrays()))
    no_pixels, no_labels = np.zeros((0, 28, 28), np.uint8), np.zeros(0, np.uint8)
    no_drawings, _ = prepare_collected(no_pixels, no_labels, np.zeros(0, bool), repeats=0)
    save_arrays(folder / paths.COLLECTED_TRAIN_DIR, no_drawings)
    return folder


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> Path:
    np.savez(path, **arrays)
    return path


def idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + np.array(array.shape, ">u4").tobytes()
    return header + array.astype(np.uint8).tobytes()


def write_idx_folder(folder: Path, arrays: dict[str, np.ndarray], gzipped: bool) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, stem in IDX_FILES.items():
        data = idx_bytes(arrays[name])
        if gzipped:
            (folder / f"{stem}.gz").write_bytes(gzip.compress(data))
        else:
            (folder / stem).write_bytes(data)
    return folder


def classic_pickle(arrays: dict[str, np.ndarray]) -> bytes:
    """mnist.pkl.gz as the classic distribution lays it out: train/validation/test, pixel / 256."""

    def split(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return (x.reshape(len(x), 784).astype(np.float32) / 256, y.astype(np.int64))

    n_valid = len(arrays["x_train"]) // 5
    splits = (
        split(arrays["x_train"][:-n_valid], arrays["y_train"][:-n_valid]),
        split(arrays["x_train"][-n_valid:], arrays["y_train"][-n_valid:]),
        split(arrays["x_test"], arrays["y_test"]),
    )
    return gzip.compress(pickle.dumps(splits, protocol=2))


def write_wheel(path: Path, member: bytes) -> Path:
    with zipfile.ZipFile(path, "w") as wheel:
        wheel.writestr(PICKLE_MEMBER, member)
    return path


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def probabilities_for(predicted: np.ndarray, confidence: float = 0.9) -> np.ndarray:
    """Probabilities (N, 10) that read each image as `predicted` with `confidence`, the rest
    spread evenly."""
    probabilities = np.full((len(predicted), 10), (1 - confidence) / 9, dtype=np.float32)
    probabilities[np.arange(len(predicted)), predicted] = confidence
    return probabilities
