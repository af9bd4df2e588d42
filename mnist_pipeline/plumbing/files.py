"""Crash-safe writes and array files: an output either appears whole or not at all."""

import contextlib
import errno
import fcntl
import hashlib
import os
import shutil
import tempfile
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np

from mnist_pipeline.plumbing.errors import ModelFileError, PipelineError

# What a stage says of an input that an earlier stage should have made.
MISSING_OUTPUT = "missing; run `dvc repro` to create it"
ZIP_SIGNATURE = b"PK\x03\x04"  # how a zip archive (.npz, .keras, .whl) begins


def temporary_prefix(path: Path) -> str:
    """How the names of `path`'s temporaries, made beside it, begin: `.<name>.tmp-`. .gitignore
    ignores that pattern, and the next write of `path` finds by it what a killed run left."""
    return f".{path.name}.tmp-"


def remove_stale_temporaries(path: Path) -> None:
    """Remove what killed writes of `path` left beside it. None of it is still being written: an
    output has one writer at a time (DVC runs a stage once at a time in a workspace; a model is
    fetched into the user cache under locked_folder)."""
    prefix = temporary_prefix(path)
    for stale in path.parent.iterdir():
        if stale.name.startswith(prefix):
            if stale.is_dir() and not stale.is_symlink():
                shutil.rmtree(stale, ignore_errors=True)
            else:
                stale.unlink(missing_ok=True)


@contextlib.contextmanager
def _temporary_file(path: Path) -> Iterator[Path]:
    """Yield a new empty file beside `path`, named for it; it is removed unless renamed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    # Keep the suffix: some writers (Keras) choose the format by it.
    fd, name = tempfile.mkstemp(prefix=temporary_prefix(path), suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        yield Path(name)
    finally:
        Path(name).unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_files(*paths: Path, mode: int = 0o644) -> Iterator[tuple[Path, ...]]:
    """Yield a temporary path beside each of `paths`; they replace their outputs only once the
    block has written them all, with `mode`: a failure midway leaves every old output as it was."""
    with contextlib.ExitStack() as stack:
        temporaries = tuple(stack.enter_context(_temporary_file(path)) for path in paths)
        yield temporaries
        # Each temporary was made beside its output, so a rename can fail only where a folder is
        # in an output's place: found before the first rename, not after some.
        for path in paths:
            if path.is_dir():
                raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
        for tmp, path in zip(temporaries, paths, strict=True):
            tmp.chmod(mode)  # mkstemp makes it private (0o600)
            tmp.replace(path)


@contextlib.contextmanager
def atomic_file(path: Path, mode: int = 0o644) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it to `path`, with `mode`, only if the block
    succeeds."""
    with atomic_files(path, mode=mode) as (tmp,):
        yield tmp


@contextlib.contextmanager
def locked_folder(folder: Path) -> Iterator[None]:
    """Hold `folder` for this process alone while the block runs: another process that asks
    waits for it (an advisory lock, flock, released when the process ends, however it ends)."""
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)


@contextlib.contextmanager
def atomic_dir(path: Path) -> Iterator[Path]:
    """Yield a temporary folder beside `path`; it replaces `path` only if the block succeeds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    tmp = Path(tempfile.mkdtemp(prefix=temporary_prefix(path), dir=path.parent))
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


def md5_of_file(path: Path) -> str:
    """The hash DVC names a file by (dvc.lock, its cache and remotes)."""
    with path.open("rb") as f:
        return hashlib.file_digest(f, "md5").hexdigest()


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
        # np.load takes any file that is neither .npy nor .npz for a pickle, and says so.
        if not isinstance(error, OSError) and not is_numpy_file(path):
            raise PipelineError(f"{path}: not a NumPy file (expected a {kind})") from None
        raise PipelineError(f"{path}: not a readable {kind} ({error})") from None


def is_numpy_file(path: Path) -> bool:
    """Whether `path` begins as np.save's .npy files or np.savez's .npz archives (zips) do."""
    with path.open("rb") as file:
        start = file.read(len(np.lib.format.MAGIC_PREFIX))
    return start == np.lib.format.MAGIC_PREFIX or start.startswith(ZIP_SIGNATURE)


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


def check_model_file(path: Path) -> None:
    """Raise ModelFileError if the trained model is not there yet: the one check of a model
    load, made where a reference is resolved (registry.resolve, the evaluate stage). Cheap: no
    TensorFlow import. A relative path is resolved against the current folder: the message says
    which one.
    """
    if not path.is_file():
        where = "" if path.is_absolute() else f" (looked in {path.resolve().parent})"
        raise ModelFileError(path, f"no trained model{where}")
