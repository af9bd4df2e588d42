"""The train stage's speed devices, measured by `python -m benchmarks.speedups`; the others are
FusedRMSprop, train.steps_per_execution, cli.run's skip_teardown and plumbing/imports.py. These
here change no result: the trained bytes are the same with or without each
(tests/training/test_speedups.py).
TensorFlow is imported only where it is used.
"""

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mnist_pipeline.plumbing.arrays import MISSING_OUTPUT, load_array, numpy_read_errors
from mnist_pipeline.plumbing.errors import PipelineError

if TYPE_CHECKING:
    import keras
    import tensorflow as tf

# TensorFlow uses a buffer in place only if it is aligned to 64 bytes; numpy aligns to 16.
TENSOR_ALIGNMENT = 64


@contextlib.contextmanager
def keras_without_pandas() -> Iterator[None]:
    """Import Keras inside this block without pandas, which Keras 3.15 imports, if installed,
    only to accept DataFrames (a quarter of a second; `try: import pandas` in Keras'
    src/trainers/data_adapters/array_slicing.py). We hand Keras none; pandas stays importable
    after the block."""
    if "pandas" in sys.modules:  # loaded already: nothing to save
        yield
        return
    sys.modules["pandas"] = None  # type: ignore[assignment]  # `import pandas` raises ImportError
    try:
        yield
    finally:
        if sys.modules.get("pandas", False) is None:
            del sys.modules["pandas"]


def load_aligned_arrays(folder: Path, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """arrays.load_arrays, each array aligned for `as_tensor` (load_aligned_array)."""
    return {name: load_aligned_array(folder / f"{name}.npy", MISSING_OUTPUT) for name in names}


def load_aligned_array(path: Path, missing: str = "not found") -> np.ndarray:
    """Read one `.npy` array into memory aligned to TENSOR_ALIGNMENT bytes, so that `as_tensor`
    hands it to TensorFlow without a copy."""
    mapped = load_array(path, mmap=True, missing=missing)  # numpy parses and checks the header
    if not mapped.flags.c_contiguous:  # not what np.save writes from our arrays: read as usual
        return np.array(mapped)
    buffer = np.empty(mapped.nbytes + TENSOR_ALIGNMENT, np.uint8)
    start = -buffer.ctypes.data % TENSOR_ALIGNMENT
    array = buffer[start : start + mapped.nbytes].view(mapped.dtype).reshape(mapped.shape)
    with numpy_read_errors(path, ".npy array", missing), path.open("rb") as file:
        file.seek(mapped.offset)
        if file.readinto(memoryview(array).cast("B")) != mapped.nbytes:
            raise PipelineError(f"{path}: shorter than its header says (changed while read?)")
    return array


def as_tensor(array: np.ndarray) -> "tf.Tensor":
    """The array as a tensor sharing its memory where TensorFlow allows (load_aligned_array reads
    arrays so), copied once otherwise: given numpy arrays, Keras' fit would copy them itself."""
    import tensorflow as tf

    if (
        array.ctypes.data % TENSOR_ALIGNMENT == 0
        and array.flags.c_contiguous
        and array.flags.writeable
    ):
        return tf.experimental.dlpack.from_dlpack(array.__dlpack__())
    return tf.convert_to_tensor(array)


def build_before_fit(model: "keras.Model", x: np.ndarray, y: np.ndarray) -> None:
    """Create the optimizer's and the compiled metrics' variables of a compiled `model` now, so
    that `fit` traces its training step once.

    Keras on TensorFlow creates them inside the first trace of the step (without a distribution
    strategy, `_maybe_symbolic_build` in Keras' src/backend/tensorflow/trainer.py defers the
    build to it), and TensorFlow traces a function again when its first trace created variables
    (tensorflow/tensorflow#48851): a second trace of the whole step, 0.2-0.3 s. The first label
    stands in for the model's prediction: only the metrics' variables matter here, and `fit`
    resets their state at the start of every epoch.
    """
    model.optimizer.build(model.trainable_variables)
    model.compute_metrics(x[:1], y[:1], y[:1])
