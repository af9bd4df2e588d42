"""End to end: the real `dvc` pipeline in a throwaway copy of the project, on tiny local data."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from synthetic import write_npz

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
pytestmark = pytest.mark.e2e

# What a clone holds, less what the pipeline makes.
LEFT_OUT = shutil.ignore_patterns(
    ".git", ".venv", "data", "models", "reports", "dvc.lock", "dvc_plots", "cache", "tmp",
    "__pycache__", ".pytest_cache", ".ruff_cache", "tests", "benchmarks",
)  # fmt: skip


def run(repo: Path, *command: str) -> str:
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",  # stages call `python`
        "DVC_NO_ANALYTICS": "1",
        "GIT_AUTHOR_NAME": "test",
        "GIT_AUTHOR_EMAIL": "test@example.com",
        "GIT_COMMITTER_NAME": "test",
        "GIT_COMMITTER_EMAIL": "test@example.com",
    }
    result = subprocess.run(command, cwd=repo, env=env, capture_output=True, text=True)
    assert result.returncode == 0, f"{command} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout + result.stderr


def set_params(repo: Path, **changes: dict) -> None:
    document = yaml.safe_load((repo / "params.yaml").read_text())
    for section, values in changes.items():
        document[section].update(values)
    (repo / "params.yaml").write_text(yaml.safe_dump(document, sort_keys=False))


def stages_run(output: str) -> list[str]:
    return [line.split("'")[1] for line in output.splitlines() if line.startswith("Running stage")]


@pytest.fixture(scope="module")
def repo(tmp_path_factory, tiny_mnist):
    repo = tmp_path_factory.mktemp("project")
    shutil.copytree(ROOT, repo, ignore=LEFT_OUT, dirs_exist_ok=True)
    local = write_npz(tmp_path_factory.mktemp("mine") / "mnist.npz", tiny_mnist)
    set_params(
        repo,
        fetch={"sources": ["local"], "local_path": str(local), "verify_checksums": False},
        train={"epochs": 1},
    )
    run(repo, "git", "init", "-q")
    run(repo, "git", "add", "-A")
    run(repo, "git", "commit", "-qm", "project")
    return repo


def test_repro_runs_every_stage_and_writes_metrics(repo):
    assert stages_run(run(repo, str(BIN / "dvc"), "repro")) == [
        "fetch", "preprocess", "train", "evaluate",
    ]  # fmt: skip
    metrics = json.loads((repo / "reports/metrics.json").read_text())["test"]
    assert 0 <= metrics["accuracy"] <= 1 and metrics["loss"] > 0
    assert sorted(metrics["per_class"]) == [str(digit) for digit in range(10)]
    assert {"precision", "recall", "f1", "support"} == set(metrics["per_class"]["3"])
    shown = json.loads(run(repo, str(BIN / "dvc"), "metrics", "show", "--json"))
    reported = shown[""]["data"]["reports/metrics.json"]["data"]["test"]
    assert reported["accuracy"] == metrics["accuracy"]


def test_second_repro_does_nothing_and_forced_repro_is_byte_identical(repo):
    lock = (repo / "dvc.lock").read_bytes()
    assert "Data and pipelines are up to date" in run(repo, str(BIN / "dvc"), "repro")
    assert (repo / "dvc.lock").read_bytes() == lock
    run(repo, str(BIN / "dvc"), "repro", "--force")
    assert (repo / "dvc.lock").read_bytes() == lock


def test_editing_train_params_reruns_only_train_and_evaluate(repo):
    set_params(repo, train={"epochs": 2})
    assert stages_run(run(repo, str(BIN / "dvc"), "repro")) == ["train", "evaluate"]
    history = (repo / "reports/train/train.csv").read_text().splitlines()
    assert len(history) == 1 + 2


def test_editing_fetch_params_reruns_fetch_and_nothing_whose_inputs_are_unchanged(repo):
    set_params(repo, fetch={"retries": 2})
    assert stages_run(run(repo, str(BIN / "dvc"), "repro")) == ["fetch"]


def test_plots_show_draws_curves_confusion_and_misread_digits(repo):
    run(repo, str(BIN / "dvc"), "plots", "show", "-o", "plots_html")
    page = (repo / "plots_html/index.html").read_text()
    for title in ("Loss per epoch", "Accuracy per epoch", "Confusion matrix of the test set"):
        assert title in page
    assert '"predicted"' in page and '"actual"' in page
    assert "misread.png" in page
    assert list((repo / "plots_html/static").glob("*misread.png"))


def test_a_typo_in_params_stops_the_stage_with_one_line(repo):
    set_params(repo, train={"epoch": 3})
    result = subprocess.run(
        [str(BIN / "dvc"), "repro"], cwd=repo, capture_output=True, text=True,
        env={**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"},
    )  # fmt: skip
    document = yaml.safe_load((repo / "params.yaml").read_text())
    del document["train"]["epoch"]
    (repo / "params.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    assert result.returncode != 0
    assert "train: error: params.yaml: train.epoch is not a known parameter" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_experiment_with_a_set_param_appears_in_exp_show(repo):
    run(repo, "git", "add", "-A")
    run(repo, "git", "commit", "-qm", "baseline")
    run(repo, str(BIN / "dvc"), "exp", "run", "-S", "train.epochs=3", "-n", "three-epochs")
    experiments = json.loads(run(repo, str(BIN / "dvc"), "exp", "show", "--json"))
    flat = json.dumps(experiments)
    assert "three-epochs" in flat
    assert '"epochs": 3' in flat
