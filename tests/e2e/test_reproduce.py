"""`mnist-reproduce` on a real project: every stage rerun in a scratch clone, compared with the
committed dvc.lock; the workspace's own files untouched."""

import hashlib
import sys

import pytest

from tests.support.project import output, run, set_params

pytestmark = pytest.mark.e2e


def reproduce(repo):
    return run(repo, sys.executable, "-m", "mnist_pipeline.reproduce", "-q", check=False)


def md5(path):
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_a_committed_project_is_reproduced_byte_for_byte(reproduced_project):
    result = reproduce(reproduced_project)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "reproduced byte for byte: all 15 outputs of dvc.lock"
    assert lines[1].startswith("CPU: ")
    assert lines[2].startswith("kernel path: train.instruction_set avx2, train.threads 2; oneDNN")
    assert output(reproduced_project, "git", "status", "--porcelain") == ""


def test_a_param_changed_by_hand_names_each_output_that_differs(reproduced_project):
    model = reproduced_project / "models" / "model.keras"
    before = md5(model)
    set_params(reproduced_project, train={"seed": 7})
    result = reproduce(reproduced_project)
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stdout.startswith("NOT reproduced: ")
    committed = {
        line.split(": md5 ")[0]: line.split()[-2]
        for line in result.stdout.splitlines()
        if ": md5 " in line
    }
    # What the seed steers, and nothing upstream of it.
    assert {"models/model.keras", "models/model.tflite", "reports/metrics.json"} <= committed.keys()
    assert not any(path.startswith("data/") for path in committed)
    assert committed["models/model.keras"] == before
    assert "test.loss" in result.stdout  # dvc metrics diff against the committed run
    # The workspace keeps its own outputs: only the hand edit is a change.
    assert md5(model) == before
    assert output(reproduced_project, "git", "status", "--porcelain") == " M params.yaml\n"
