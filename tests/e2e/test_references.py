"""Models named by reference in a repository of this machine (no remote): every reference that
names no model, or two, is one line saying what is wrong, through `predict` as a user runs it.

The repository is the reproduced tiny project with mnist-mlp v1.0.0 registered (and in stage
prod), v1.1.0 registered on a commit whose dvc.yaml declares no artifact, an experiment `wider`
and a branch of the same name, and a branch `unbuilt` whose dvc.lock names a model never built.
"""

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.support.project import BIN, DVC, copy_project, run
from tests.support.remote import TIMEOUT

pytestmark = pytest.mark.e2e

GTO = str(BIN / "gto")
NEVER_BUILT = "0" * 32


@pytest.fixture(scope="module")
def repo(reproduced_template, tmp_path_factory) -> Path:
    repo = copy_project(reproduced_template, tmp_path_factory.mktemp("references") / "repo")
    run(repo, GTO, "register", "mnist-mlp", "--version", "v1.0.0")
    run(repo, GTO, "assign", "mnist-mlp", "--version", "v1.0.0", "--stage", "prod")
    run(repo, DVC, "exp", "run", "-n", "wider", "-S", "model.dense.hidden_units=[32]",
        timeout=TIMEOUT)  # fmt: skip
    run(repo, "git", "checkout", "-q", "--", ".")
    run(repo, DVC, "checkout", "-q")
    run(repo, "git", "branch", "wider")  # main's commit, not the experiment's

    run(repo, "git", "checkout", "-q", "-b", "unbuilt")
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    for stage in lock["stages"].values():
        for out in stage["outs"]:
            if out["path"] == "models/model.tflite":
                out["md5"] = NEVER_BUILT
    (repo / "dvc.lock").write_text(yaml.safe_dump(lock))
    run(repo, "git", "commit", "-qam", "a model never built")

    run(repo, "git", "checkout", "-q", "-b", "no-artifacts", "main")
    dvc_yaml = yaml.safe_load((repo / "dvc.yaml").read_text())
    del dvc_yaml["artifacts"]
    (repo / "dvc.yaml").write_text(yaml.safe_dump(dvc_yaml, sort_keys=False))
    run(repo, "git", "commit", "-qam", "no artifacts")
    run(repo, GTO, "register", "mnist-mlp", "--version", "v1.1.0")
    run(repo, "git", "checkout", "-q", "main")
    return repo


def predict_error(repo: Path, reference: str, cache: Path) -> str:
    """The one line `predict --model REFERENCE` fails with, in `repo` (after any progress)."""
    digit = (
        Path(__file__).parents[1] / "support" / "pictures.py"
    )  # never read: the reference fails first
    command = [sys.executable, "-m", "mnist_pipeline.predict", "--model", reference, str(digit)]
    result = run(repo, *command, env={"MNIST_PIPELINE_CACHE": str(cache)}, check=False,
                 timeout=TIMEOUT)  # fmt: skip
    assert result.returncode == 1 and result.stdout == "", result.stderr
    [line] = [line for line in result.stderr.splitlines() if not line.startswith("INFO ")]
    return line.removeprefix("predict: error: ")


@pytest.mark.parametrize(
    ("reference", "kind"),
    [("HEAD:models", "tree"), ("HEAD^{tree}", "tree"), ("HEAD:dvc.lock", "blob")],
)
def test_a_git_object_that_is_no_commit_is_one_line(repo, tmp_path, reference, kind):
    what = "a folder" if kind == "tree" else "a file"
    assert predict_error(repo, reference, tmp_path) == (
        f"{reference}: a git {kind} ({what} of a commit), not a commit: name a commit, a branch, "
        "a tag or an experiment"
    )


@pytest.mark.parametrize(
    ("reference", "error"),
    [
        ("mnist-mlp@", "no version after @ (versions: v1.1.0, v1.0.0)"),
        ("mnist-mlp#", "no stage after # (stages: prod)"),
        ("mnist-mlp#prod@v0.9.0", "a version or a stage, not both (NAME@VERSION or NAME#STAGE)"),
        ("mnist-mlp@v9.9.9", "no such version (versions: v1.1.0, v1.0.0)"),
    ],
)
def test_a_registry_reference_missing_or_with_more_than_a_part_is_one_line(
    repo, tmp_path, reference, error
):
    assert predict_error(repo, reference, tmp_path) == f"{reference}: {error}"


def test_a_version_registered_where_dvc_yaml_declares_no_artifact_says_so(repo, tmp_path):
    commit = run(repo, "git", "rev-parse", "--short=7", "no-artifacts").stdout.strip()
    assert predict_error(repo, "mnist-mlp@v1.1.0", tmp_path) == (
        f"mnist-mlp@v1.1.0: version v1.1.0 is registered on commit {commit}, whose dvc.yaml "
        "declares no artifact mnist-mlp: register a commit whose dvc.yaml does"
    )


def test_a_branch_and_an_experiment_of_one_name_are_refused_and_each_full_ref_reads(
    repo, tmp_path, tiny_mnist
):
    main = run(repo, "git", "rev-parse", "main").stdout.strip()
    [experiment] = run(repo, "git", "for-each-ref", "--format=%(refname) %(objectname)",
                       "refs/exps").stdout.split("\n")[:1]  # fmt: skip
    ref, commit = experiment.split()
    assert predict_error(repo, "wider", tmp_path) == (
        "wider: names both a git revision and an experiment, two different models; name one by "
        f"its full ref: refs/heads/wider (commit {main[:7]}) or {ref} (commit {commit[:7]})"
    )
    digit = tmp_path / "digit.npy"
    np.save(digit, tiny_mnist["x_test"][0])
    for full, revision in (("refs/heads/wider", main), (ref, commit)):
        command = [sys.executable, "-m", "mnist_pipeline.predict", "--json", "--model", full]
        result = run(repo, *command, str(digit), env={"MNIST_PIPELINE_CACHE": str(tmp_path)},
                     timeout=TIMEOUT)  # fmt: skip
        assert json.loads(result.stdout)[0]["model"]["revision"] == revision


def test_a_model_never_built_or_pushed_says_what_to_run(repo, tmp_path):
    commit = run(repo, "git", "rev-parse", "--short=7", "unbuilt").stdout.strip()
    assert predict_error(repo, "unbuilt", tmp_path) == (
        f"unbuilt: models/model.tflite of revision {commit} is not in the DVC cache (no remote is "
        f"configured): it was never built there or never pushed; run `dvc repro` at revision "
        f"{commit} to build it, or `dvc push` where it was built"
    )
    assert list((tmp_path / "models").iterdir()) == []


def test_a_revision_without_dvc_lock_is_one_line(repo, tmp_path):
    first = run(repo, "git", "rev-list", "--max-parents=0", "main").stdout.strip()
    assert predict_error(repo, first[:10], tmp_path) == (
        f"{first[:10]}: revision {first[:7]} has no dvc.lock: no model was built in it"
    )


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give the repository to another user")
def test_a_repository_of_another_user_is_one_line_naming_git_safe_directory(repo, tmp_path):
    theirs = copy_project(repo, tmp_path / "theirs")
    for path in [theirs, *theirs.rglob("*")]:
        os.lchown(path, 65534, 65534)  # nobody
    for reference in ("HEAD", "mnist-mlp#prod"):
        assert predict_error(theirs, reference, tmp_path / "cache") == (
            f"{reference}: git cannot read this repository: {theirs}/.git/: repository path "
            f"'{theirs}' is not owned by current user; if you trust it, run `git config --global "
            f"--add safe.directory {theirs}`"
        )
