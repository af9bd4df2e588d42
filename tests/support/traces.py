"""Counting Keras' traces of the training step, for the tests and the benchmarks."""

import contextlib
from collections.abc import Iterator

import keras


@contextlib.contextmanager
def counting_traces() -> Iterator[list[int]]:
    """Count the calls of Keras' `Model.train_step` inside the block, in the list's one item: it
    runs once per trace of the training step, never per step (the step runs as TensorFlow's
    graph)."""
    count, train_step = [0], keras.Model.train_step

    def counted(model: keras.Model, data: object) -> object:
        count[0] += 1
        return train_step(model, data)

    keras.Model.train_step = counted
    try:
        yield count
    finally:
        keras.Model.train_step = train_step
