"""End to end: the real `dvc` pipeline in a throwaway copy of the project, on tiny local data.

Each test gets its own copy (tests/support/project.py), so any one of them runs alone or in any
order.
"""

import json
import os
import shutil
import signal
import subprocess
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml

from mnist_pipeline.plumbing import paths
from tests.support.project import (
    DVC,
    ENV,
    ROOT,
    left_out,
    make_project,
    output,
    run,
    set_params,
    stages_run,
)
from tests.support.recount import check_reports

pytestmark = pytest.mark.e2e


def test_repro_runs_every_stage_and_writes_metrics(tmp_path, tiny_mnist_npz):
    repo = make_project(tmp_path / "project", tiny_mnist_npz)
    assert stages_run(output(repo, DVC, "repro")) == ["fetch", "preprocess", "train", "evaluate"]
    metrics = json.loads((repo / "reports/metrics.json").read_text())["test"]
    assert 0 <= metrics["accuracy"] <= 1 and metrics["loss"] > 0
    assert sorted(metrics) == ["accuracy", "loss", "macro_f1"]  # per digit: per_class.csv
    per_class = (repo / "reports/evaluate/per_class.csv").read_text().splitlines()
    assert per_class[0] == "digit,precision,recall,f1,support"
    assert [line.split(",")[0] for line in per_class[1:]] == [str(digit) for digit in range(10)]
    shown = json.loads(output(repo, DVC, "metrics", "show", "--json"))
    reported = shown[""]["data"]["reports/metrics.json"]["data"]["test"]
    assert reported["accuracy"] == metrics["accuracy"]


def test_every_reported_figure_is_recounted_from_the_predictions(reproduced_project):
    repo = reproduced_project
    # Two hidden units read the tiny set poorly: precision and recall of a digit differ.
    set_params(repo, model={"dense": {"hidden_units": [2], "activation": "relu"}})
    assert stages_run(output(repo, DVC, "repro")) == ["train", "evaluate"]
    recounted = check_reports(repo)
    assert (recounted["precision"] != recounted["recall"]).any()


def test_second_repro_does_nothing_and_forced_repro_is_byte_identical(reproduced_project):
    repo = reproduced_project
    lock = (repo / "dvc.lock").read_bytes()
    assert "Data and pipelines are up to date" in output(repo, DVC, "repro")
    assert (repo / "dvc.lock").read_bytes() == lock
    assert stages_run(output(repo, DVC, "repro", "--force")) == [
        "fetch", "preprocess", "train", "evaluate",
    ]  # fmt: skip
    assert (repo / "dvc.lock").read_bytes() == lock
    assert run(repo, "git", "status", "--porcelain").stdout == ""  # reports/ byte for byte too


def test_editing_train_params_reruns_only_train_and_evaluate(reproduced_project):
    repo = reproduced_project
    set_params(repo, train={"epochs": 2})
    assert stages_run(output(repo, DVC, "repro")) == ["train", "evaluate"]
    history = (repo / "reports/train/train.csv").read_text().splitlines()
    assert len(history) == 1 + 2


def test_editing_fetch_params_reruns_fetch_and_nothing_whose_inputs_are_unchanged(
    reproduced_project,
):
    repo = reproduced_project
    set_params(repo, fetch={"retries": 2})
    assert stages_run(output(repo, DVC, "repro")) == ["fetch"]


def test_plots_show_draws_curves_confusion_and_misread_digits(reproduced_project):
    repo = reproduced_project
    run(repo, DVC, "plots", "show", "-o", "plots_html")
    page = (repo / "plots_html/index.html").read_text()
    for title in (
        "Loss per epoch",
        "Accuracy per epoch",
        "Confusion matrix of the test set",
        "Precision, recall and F1 per digit",
    ):
        assert title in page
    assert '"predicted"' in page and '"actual"' in page
    assert "misread.png" in page
    assert list((repo / "plots_html/static").glob("*misread.png"))


def test_a_typo_in_params_stops_the_stage_with_one_line_and_keeps_the_lock(reproduced_project):
    repo = reproduced_project
    lock = (repo / "dvc.lock").read_bytes()
    set_params(repo, train={"epoch": 3})
    result = run(repo, DVC, "repro", check=False)
    assert result.returncode != 0
    assert "train: error: params.yaml: train.epoch is not a known parameter" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert (repo / "dvc.lock").read_bytes() == lock


def test_experiment_with_a_set_param_appears_in_exp_show(reproduced_project):
    repo = reproduced_project
    run(repo, DVC, "exp", "run", "-S", "train.epochs=3", "-n", "three-epochs")
    experiments = json.loads(output(repo, DVC, "exp", "show", "--json"))
    flat = json.dumps(experiments)
    assert "three-epochs" in flat
    assert '"epochs": 3' in flat
    # The workspace holds the experiment's results; params.yaml says so.
    assert yaml.safe_load((repo / "params.yaml").read_text())["train"]["epochs"] == 3


def test_the_kind_alone_switches_an_experiment_to_the_convnet(reproduced_project):
    repo = reproduced_project
    log = output(repo, DVC, "exp", "run", "-S", "model.kind=convnet")
    assert stages_run(log) == ["train", "evaluate"]
    with zipfile.ZipFile(repo / paths.MODEL_FILE) as archive:
        assert json.loads(archive.read("config.json"))["config"]["name"] == "mnist_convnet"
    metrics = json.loads((repo / paths.METRICS_FILE).read_text())["test"]
    assert 0 <= metrics["accuracy"] <= 1


# Loaded by the preprocess stage's Python (through PYTHONPATH): it hangs once the stage has begun
# writing its temporary folder, so that the test can kill it there, mid-write.
HANG_MID_WRITE = """
import os
import sys
import time

opened = []


def hang_at_the_second_file(event, args):
    if event == "open" and isinstance(args[0], str):
        if os.path.basename(os.path.dirname(args[0])).startswith(".prepared."):
            opened.append(args[0])
            if len(opened) > 1:
                time.sleep(600)


sys.addaudithook(hang_at_the_second_file)
"""


def half_written(folder: Path, timeout: float) -> Path:
    """The temporary folder of data/prepared, once a file is being written into it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for temporary in folder.glob(".prepared.*"):
            if any(temporary.iterdir()):
                return temporary
        time.sleep(0.05)
    raise AssertionError(f"no half-written .prepared.* folder in {folder} after {timeout} s")


def test_a_killed_preprocess_leaves_nothing_for_git_and_its_next_run_cleans_up(
    reproduced_project, tmp_path
):
    repo = reproduced_project
    (tmp_path / "hook").mkdir()
    (tmp_path / "hook" / "sitecustomize.py").write_text(HANG_MID_WRITE)
    repro = [DVC, "repro", "--force", "--single-item", "preprocess"]
    stage = subprocess.Popen(
        repro,
        cwd=repo,
        env={**os.environ, **ENV, "PYTHONPATH": str(tmp_path / "hook")},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: dvc, the shell and the stage
    )
    try:
        temporary = half_written(repo / "data", timeout=120)
    finally:
        os.killpg(stage.pid, signal.SIGKILL)
        stage.wait()
    assert temporary.is_dir()  # left behind by the killed run ...
    assert run(repo, "git", "status", "--porcelain").stdout == ""  # ... where git ignores it
    run(repo, *repro)
    assert list((repo / "data").glob(".prepared.*")) == []
    assert run(repo, "git", "status", "--porcelain").stdout == ""


def declared_outs(repo: Path, stage: str) -> list[Path]:
    """The stage's outputs, as dvc.yaml lists them."""
    outs = yaml.safe_load((repo / "dvc.yaml").read_text())["stages"][stage]["outs"]
    return [repo / (out if isinstance(out, str) else next(iter(out))) for out in outs]


@pytest.mark.parametrize("stage", ["train", "evaluate"])
def test_a_stage_with_an_output_it_cannot_replace_leaves_every_old_output(
    reproduced_project, stage
):
    repo = reproduced_project
    *kept, blocked = declared_outs(repo, stage)  # the last one written
    for out in kept:
        out.write_text("old\n")
    blocked.unlink()
    blocked.mkdir()  # a folder in its place
    result = run(repo, "python", "-m", f"stages.{stage}", check=False)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith(f"{stage}: ")]
    assert len(errors) == 1 and str(blocked.relative_to(repo)) in errors[0], result.stderr
    assert [out.read_text() for out in kept] == ["old\n"] * len(kept)
    assert blocked.is_dir()
    assert [path for out in kept for path in out.parent.glob(".*.tmp-*")] == []


@pytest.mark.parametrize(
    ("stage", "folder", "array"),
    [
        ("train", paths.PREPARED_DIR, "x_train"),
        ("evaluate", paths.PREPARED_DIR, "x_test"),
        ("evaluate", paths.FIELD_DIR, "x"),  # the held-out drawings of the starter collection
    ],
)
def test_a_stage_given_pixels_not_normalized_stops_in_one_line_and_writes_nothing(
    reproduced_project, stage, folder, array
):
    repo = reproduced_project
    pixels = repo / folder / f"{array}.npy"
    assert len(np.load(pixels)) > 0
    np.save(pixels, np.load(pixels) * 255)  # as if preprocess had not scaled them
    outs = {out: out.read_bytes() for out in declared_outs(repo, stage)}
    result = run(repo, "python", "-m", f"stages.{stage}", check=False)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert [line for line in result.stderr.splitlines() if line.startswith(f"{stage}: ")] == [
        f"{stage}: error: {folder}: pixels must be within [0, 1] (normalized)"
    ]
    assert {out: out.read_bytes() for out in outs} == outs


def test_a_project_copy_reads_none_of_the_users_dvc_or_git_settings(
    tiny_mnist_npz, tmp_path, monkeypatch
):
    # A user who followed docs/sharing.md has a default remote in .dvc/config.local; another
    # may have global DVC and git settings. None of it may reach a test's project.
    source = tmp_path / "workspace"
    shutil.copytree(ROOT, source, ignore=left_out(ROOT))
    hostile = "[core]\n    remote = users\n['remote \"users\"']\n    url = s3://users-bucket\n"
    (source / ".dvc" / "config.local").write_text(hostile)
    (tmp_path / "dvc-global").mkdir()
    (tmp_path / "dvc-global" / "config").write_text(hostile)
    (tmp_path / "gitconfig").write_text("[user]\n    name = the user\n")
    monkeypatch.setenv("DVC_GLOBAL_CONFIG_DIR", str(tmp_path / "dvc-global"))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "gitconfig"))
    repo = make_project(tmp_path / "project", tiny_mnist_npz, source=source)
    assert not (repo / ".dvc" / "config.local").exists()
    assert output(repo, DVC, "remote", "list") == ""
    assert run(repo, "git", "config", "user.name", check=False).stdout == ""
