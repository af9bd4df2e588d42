import subprocess
from pathlib import Path

import numpy as np
import pytest

from mnist_pipeline.plumbing.arrays import load_arrays, save_arrays
from mnist_pipeline.plumbing.errors import ModelFileError
from mnist_pipeline.plumbing.files import atomic_dir, atomic_file, atomic_files, check_model_file

ROOT = Path(__file__).resolve().parents[2]


def test_atomic_file_appears_only_when_the_block_succeeds(tmp_path):
    target = tmp_path / "out" / "metrics.json"
    with pytest.raises(KeyboardInterrupt), atomic_file(target) as tmp:
        tmp.write_text("half")
        raise KeyboardInterrupt
    assert not target.exists() and list(target.parent.iterdir()) == []
    with atomic_file(target) as tmp:
        assert tmp.suffix == ".json" and tmp.parent == target.parent
        tmp.write_text("whole")
    assert target.read_text() == "whole" and list(target.parent.iterdir()) == [target]


def test_atomic_dir_keeps_the_old_folder_when_writing_fails(tmp_path):
    target = tmp_path / "raw"
    save_arrays(target, {"a": np.arange(3)})
    with pytest.raises(RuntimeError), atomic_dir(target) as tmp:
        (tmp / "a.npy").write_bytes(b"partial")
        raise RuntimeError("crash")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["raw"]
    np.testing.assert_array_equal(load_arrays(target, ("a",))["a"], np.arange(3))


def test_atomic_files_replace_their_outputs_only_once_all_are_written(tmp_path):
    outputs = [tmp_path / "metrics.json", tmp_path / "evaluate" / "per_class.csv"]
    outputs[1].parent.mkdir()
    for output in outputs:
        output.write_text("old")
    with pytest.raises(RuntimeError), atomic_files(*outputs) as temporaries:
        temporaries[0].write_text("new")
        raise RuntimeError("writing the second output failed")
    assert [output.read_text() for output in outputs] == ["old", "old"]
    with atomic_files(*outputs) as temporaries:
        for temporary in temporaries:
            temporary.write_text("new")
    assert [output.read_text() for output in outputs] == ["new", "new"]
    assert sorted(tmp_path.rglob("*")) == sorted([*outputs, outputs[1].parent])


def test_a_folder_in_an_outputs_place_stops_every_output_being_replaced(tmp_path):
    metrics, predictions = tmp_path / "metrics.json", tmp_path / "predictions.csv"
    metrics.write_text("old")
    predictions.mkdir()
    with pytest.raises(IsADirectoryError), atomic_files(metrics, predictions) as temporaries:
        for temporary in temporaries:
            temporary.write_text("new")
    assert metrics.read_text() == "old" and sorted(tmp_path.iterdir()) == [metrics, predictions]


def test_a_killed_runs_temporaries_of_the_same_output_are_removed_before_writing(tmp_path):
    stale_file = tmp_path / ".metrics.json.tmp-killed.json"
    stale_file.write_text("half")
    stale_folder = tmp_path / ".prepared.tmp-killed"
    stale_folder.mkdir()
    (stale_folder / "x_train.npy").write_bytes(b"half")
    another_outputs = tmp_path / ".predictions.csv.tmp-running.csv"  # not ours to remove
    another_outputs.write_text("being written")
    with atomic_file(tmp_path / "metrics.json") as tmp:
        tmp.write_text("{}")
    save_arrays(tmp_path / "prepared", {"a": np.arange(3)})
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        another_outputs.name,
        "metrics.json",
        "prepared",
    ]


def test_git_ignores_the_temporaries_of_atomic_writes(tmp_path):
    names = []
    with atomic_file(tmp_path / "metrics.json") as tmp:
        names.append(f"reports/{tmp.name}")
    with atomic_dir(tmp_path / "prepared") as tmp:
        names.append(f"data/{tmp.name}")
        names.append(f"data/{tmp.name}/x_train.npy")
    ignored = subprocess.run(
        ["git", "check-ignore", "--no-index", *names], cwd=ROOT, capture_output=True, text=True
    )
    assert ignored.stdout.splitlines() == names, ignored.stderr


def test_a_missing_model_is_a_model_file_error_saying_where_a_relative_path_was_looked_for(
    tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models").mkdir()
    with pytest.raises(ModelFileError) as relative:
        check_model_file(Path("models/model.tflite"))
    assert (
        str(relative.value)
        == f"models/model.tflite: no trained model (looked in {tmp_path}/models)"
    )
    with pytest.raises(ModelFileError) as absolute:
        check_model_file(tmp_path / "model.keras")
    assert str(absolute.value) == f"{tmp_path / 'model.keras'}: no trained model"
    (tmp_path / "model.keras").write_bytes(b"")  # there: whether it is a model, a reader says
    check_model_file(tmp_path / "model.keras")
