"""Crash-safe writes (an output appears whole or not at all), locks, file hashes, and the
check that a model file is there."""

import contextlib
import errno
import fcntl
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from mnist_pipeline.plumbing.errors import ModelFileError

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


def check_model_file(path: Path) -> None:
    """Raise ModelFileError if the trained model is not there yet: the one check of a model
    load, made where a reference is resolved (registry.resolve, the evaluate stage). Cheap: no
    TensorFlow import. A relative path is resolved against the current folder: the message says
    which one.
    """
    if not path.is_file():
        where = "" if path.is_absolute() else f" (looked in {path.resolve().parent})"
        raise ModelFileError(path, f"no trained model{where}")
