"""TensorFlow's import with the garbage collector paused, then its objects frozen."""

import gc

from mnist_pipeline.plumbing.imports import importing_tensorflow


def test_importing_tensorflow_pauses_the_collector_and_freezes_what_it_made():
    frozen_before = gc.get_freeze_count()
    with importing_tensorflow():
        assert not gc.isenabled()
        made = [[] for _ in range(1000)]  # stands in for the objects an import makes
    assert gc.isenabled()
    assert gc.get_freeze_count() >= frozen_before + len(made)


def test_importing_tensorflow_leaves_a_paused_collector_paused():
    gc.disable()
    try:
        with importing_tensorflow():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
