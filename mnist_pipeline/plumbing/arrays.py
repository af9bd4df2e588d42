"""Array files: NumPy's .npy and .npz read without unpickling anything, each failure one line
naming the file; a folder of .npy arrays written atomically, byte for byte the same each time."""

import contextlib
import hashlib
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np

from mnist_pipeline.plumbing.errors import PipelineError
from mnist_pipeline.plumbing.files import ZIP_SIGNATURE, atomic_dir

# What a stage says of an input that an earlier stage should have made.
MISSING_OUTPUT = "missing; run `dvc repro` to create it"


def sha256_of_array(array: np.ndarray) -> str:
    """Hash of the array's raw bytes in C order: independent of the file format it came from."""
    return hashlib.sha256(np.ascontiguousarray(array).data).hexdigest()


def save_arrays(folder: Path, arrays: Mapping[str, np.ndarray]) -> None:
    """Write each array as `<name>.npy` into a fresh `folder`, atomically as a whole.

    One .npy per array rather than np.savez: a zip stamps the write time into its entries.
    """
    save_array_folders({folder: arrays})


def save_array_folders(folders: Mapping[Path, Mapping[str, np.ndarray]]) -> None:
    """Write each folder's arrays as save_arrays does, all as a set: a failure midway leaves
    every old folder as it was (a stage's outputs all come from one run)."""
    with contextlib.ExitStack() as stack:
        temporaries = {folder: stack.enter_context(atomic_dir(folder)) for folder in folders}
        for folder, arrays in folders.items():
            for name, array in arrays.items():
                np.save(temporaries[folder] / f"{name}.npy", array, allow_pickle=False)


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
