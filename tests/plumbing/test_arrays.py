"""NumPy array files: written atomically and reproducibly, read without unpickling, refused in one
line."""

import numpy as np
import pytest

from mnist_pipeline.plumbing.arrays import (
    load_array,
    load_arrays,
    load_npz,
    save_array_folders,
    save_arrays,
)
from mnist_pipeline.plumbing.errors import PipelineError


def test_save_arrays_is_byte_reproducible_and_replaces_the_folder(tmp_path):
    save_arrays(tmp_path / "x", {"old": np.zeros(2)})
    save_arrays(tmp_path / "x", {"a": np.arange(5, dtype=np.uint8)})
    first = (tmp_path / "x" / "a.npy").read_bytes()
    save_arrays(tmp_path / "x", {"a": np.arange(5, dtype=np.uint8)})
    assert (tmp_path / "x" / "a.npy").read_bytes() == first
    assert [p.name for p in (tmp_path / "x").iterdir()] == ["a.npy"]


def test_load_arrays_names_the_missing_or_broken_file(tmp_path):
    with pytest.raises(PipelineError, match=r"x_test.npy: missing; run `dvc repro`"):
        load_arrays(tmp_path, ("x_test",))
    (tmp_path / "x_test.npy").write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(PipelineError, match=r"x_test.npy: not a readable .npy array"):
        load_arrays(tmp_path, ("x_test",))


def test_load_array_and_load_npz_each_refuse_the_other_format(tmp_path):
    np.save(tmp_path / "one.npy", np.arange(3))
    np.savez(tmp_path / "many.npz", a=np.arange(2), b=np.ones(1))
    np.testing.assert_array_equal(load_array(tmp_path / "one.npy"), np.arange(3))
    assert sorted(load_npz(tmp_path / "many.npz")) == ["a", "b"]
    with pytest.raises(PipelineError, match=r"many.npz: an .npz archive, not a single .npy array"):
        load_array(tmp_path / "many.npz")
    with pytest.raises(PipelineError, match=r"one.npy: a single .npy array, not an .npz archive"):
        load_npz(tmp_path / "one.npy")
    with pytest.raises(PipelineError, match=r"gone.npy: not found"):
        load_array(tmp_path / "gone.npy")


def test_pickled_objects_are_never_unpickled(tmp_path):
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    np.savez(tmp_path / "objects.npz", x=np.array([{"a": 1}], dtype=object))
    with pytest.raises(PipelineError, match=r"objects.npy: not a readable .npy array"):
        load_array(tmp_path / "objects.npy")
    with pytest.raises(PipelineError, match=r"objects.npz: not a readable .npz archive"):
        load_npz(tmp_path / "objects.npz")


@pytest.mark.parametrize(
    "content",
    [bytes(np.random.default_rng(0).integers(0, 256, 1000, np.uint8)), b"\x93NUM", b""],
    ids=["random-bytes", "cut-in-its-magic-string", "empty"],
)
def test_a_file_that_is_no_numpy_file_is_said_to_be_none(content, tmp_path):
    path = tmp_path / "digit.npy"
    path.write_bytes(content)
    with pytest.raises(PipelineError) as error:
        load_array(path)
    assert str(error.value) == f"{path}: not a NumPy file (expected a .npy array)"
    with pytest.raises(PipelineError) as error:
        load_npz(path)
    assert str(error.value) == f"{path}: not a NumPy file (expected a .npz archive)"


def test_folders_saved_as_a_set_keep_every_old_one_when_one_fails(tmp_path):
    for name in ("first", "second"):
        save_arrays(tmp_path / name, {"a": np.zeros(2)})
    with pytest.raises(ValueError, match="allow_pickle"):  # an object array is never pickled
        save_array_folders(
            {tmp_path / "first": {"a": np.ones(2)}, tmp_path / "second": {"a": np.array([{}])}}
        )
    for name in ("first", "second"):
        np.testing.assert_array_equal(load_arrays(tmp_path / name, ("a",))["a"], np.zeros(2))
    assert sorted(path.name for path in tmp_path.iterdir()) == ["first", "second"]
    save_array_folders({tmp_path / "first": {"b": np.ones(1)}, tmp_path / "second": {}})
    assert [path.name for path in (tmp_path / "first").iterdir()] == ["b.npy"]
    assert not list((tmp_path / "second").iterdir())
