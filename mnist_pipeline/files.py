"""Crash-safe writes and array files: an output either appears whole or not at all."""

import contextlib
import hashlib
import os
import shutil
import tempfile
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np

from mnist_pipeline.errors import PipelineError

# What a stage says of an input that an earlier stage should have made.
MISSING_OUTPUT = "missing; run `dvc repro` to create it"
ZIP_SIGNATURE = b"PK\x03\x04"  # how a zip archive (.npz, .keras, .whl) begins


@contextlib.contextmanager
def atomic_file(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it to `path` only if the block succeeds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # Keep the suffix: some writers (Keras) choose the format by it.
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{path.stem}.tmp-", suffix=path.suffix, dir=path.parent
    )
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        tmp.chmod(0o644)  # mkstemp makes it private; the output is an ordinary file
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_dir(path: Path) -> Iterator[Path]:
    """Yield a temporary folder beside `path`; it replaces `path` only if the block succeeds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        tmp.chmod(0o755)
        if path.exists():
            shutil.rmtree(path)
        tmp.rename(path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def sha256_of_file(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def sha256_of_array(array: np.ndarray) -> str:
    """Hash of the array's raw bytes in C order: independent of the file format it came from."""
    return hashlib.sha256(np.ascontiguousarray(array).data).hexdigest()


def save_arrays(folder: Path, arrays: Mapping[str, np.ndarray]) -> None:
    """Write each array as `<name>.npy` into a fresh `folder`, atomically as a whole.

    One .npy per array rather than np.savez: a zip stamps the write time into its entries.
    """
    with atomic_dir(folder) as tmp:
        for name, array in arrays.items():
            np.save(tmp / f"{name}.npy", array, allow_pickle=False)


@contextlib.contextmanager
def numpy_read_errors(path: Path, kind: str, missing: str = "not found") -> Iterator[None]:
    """Turn what np.load raises for `path` into one PipelineError line: the one place that does.

    `kind` names what the file should be (".npy array", ".npz archive"); `missing` is the message
    for a file that is not there.
    """
    try:
        yield
    except FileNotFoundError:
        raise PipelineError(f"{path}: {missing}") from None
    except (ValueError, EOFError, OSError, zipfile.BadZipFile) as error:
        raise PipelineError(f"{path}: not a readable {kind} ({error})") from None


def load_array(path: Path, mmap: bool = False, missing: str = "not found") -> np.ndarray:
    """Read one `.npy` array, never unpickling anything (a pickle could run code); `mmap` maps
    the file rather than reading it."""
    with numpy_read_errors(path, ".npy array", missing):
        array = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    if not isinstance(array, np.ndarray):  # np.load opens an .npz archive as an NpzFile
        array.close()
        raise PipelineError(f"{path}: an .npz archive, not a single .npy array")
    return array


def load_npz(path: Path) -> dict[str, np.ndarray]:
    """Read every array of an `.npz` archive, never unpickling anything."""
    with numpy_read_errors(path, ".npz archive"):
        archive = np.load(path, allow_pickle=False)
    if isinstance(archive, np.ndarray):
        raise PipelineError(f"{path}: a single .npy array, not an .npz archive")
    with archive, numpy_read_errors(path, ".npz archive"):  # members are read here
        return {name: archive[name] for name in archive.files}


def load_arrays(folder: Path, names: tuple[str, ...], mmap: bool = False) -> dict[str, np.ndarray]:
    """Read `<name>.npy` for each name, as save_arrays wrote them; `mmap` maps them instead."""
    return {name: load_array(folder / f"{name}.npy", mmap, MISSING_OUTPUT) for name in names}


def check_model_file(path: Path, hint: str = "run `dvc repro` first") -> None:
    """Raise PipelineError if the trained model is not there yet. Cheap: no TensorFlow import.

    A relative path is resolved against the current folder: the message says which one.
    """
    if not path.is_file():
        where = "" if path.is_absolute() else f" (looked in {path.resolve().parent})"
        raise PipelineError(f"{path}: no trained model{where}; {hint}")
