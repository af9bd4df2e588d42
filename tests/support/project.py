"""A throwaway copy of the project as a git repository, for tests that run the real `dvc`."""

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
DVC = str(BIN / "dvc")

# What a clone holds, less what the pipeline makes, and less the user's own DVC settings
# (`config.local`: remotes and credentials that docs/sharing.md has them add): some names only at
# the project's top (mnist_pipeline/data/ is code), the others anywhere (.dvc/cache, .dvc/tmp).
LEFT_OUT_AT_THE_TOP = {"data", "models", "reports", "dvc.lock", "dvc_plots", "tests", "benchmarks",
                       "tools"}  # fmt: skip
LEFT_OUT_ANYWHERE = shutil.ignore_patterns(
    ".git", ".venv", "cache", "tmp", "__pycache__", ".pytest_cache", ".ruff_cache",
    ".import_linter_cache", "config.local",
)  # fmt: skip


def left_out(root: Path) -> Callable[[str, list[str]], set[str]]:
    """shutil.copytree's `ignore` for a copy of the project in `root`."""

    def ignored(folder: str, names: list[str]) -> set[str]:
        at_the_top = LEFT_OUT_AT_THE_TOP.intersection(names) if Path(folder) == root else set()
        return at_the_top | LEFT_OUT_ANYWHERE(folder, names)

    return ignored


# A folder that is never made: DVC finds no global or system configuration there.
NO_CONFIG = str(Path(tempfile.gettempdir()) / "mnist-pipeline-tests-no-dvc-config")

ENV = {
    "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",  # stages call `python`
    "DVC_NO_ANALYTICS": "1",
    "DVC_GLOBAL_CONFIG_DIR": NO_CONFIG,
    "DVC_SYSTEM_CONFIG_DIR": NO_CONFIG,
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_AUTHOR_NAME": "test",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "test",
    "GIT_COMMITTER_EMAIL": "test@example.com",
}


def run(
    repo: Path,
    *command: str,
    check: bool = True,
    env: dict[str, str] | None = None,
    timeout: float | None = None,
) -> subprocess.CompletedProcess:
    """Run `command` in `repo` with the test environment (plus `env`); by default it must
    succeed."""
    result = subprocess.run(
        command,
        cwd=repo,
        env={**os.environ, **ENV, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check:
        assert result.returncode == 0, f"{command} failed:\n{result.stdout}\n{result.stderr}"
    return result


def output(repo: Path, *command: str, env: dict[str, str] | None = None) -> str:
    result = run(repo, *command, env=env)
    return result.stdout + result.stderr


def set_params(repo: Path, **changes: dict) -> None:
    document = yaml.safe_load((repo / "params.yaml").read_text())
    for section, values in changes.items():
        document[section].update(values)
    (repo / "params.yaml").write_text(yaml.safe_dump(document, sort_keys=False))


def stages_run(log: str) -> list[str]:
    """The stages `dvc repro` (or `dvc exp run`) ran, in order, from its output."""
    return [line.split("'")[1] for line in log.splitlines() if line.startswith("Running stage")]


def make_project(folder: Path, mnist_npz: Path, source: Path = ROOT) -> Path:
    """Copy the project (from `source`) into `folder` as a one-commit git repository that trains
    1 epoch on the tiny MNIST-format data in `mnist_npz` (an absolute path, so queued experiments
    find it too)."""
    shutil.copytree(source, folder, ignore=left_out(source), dirs_exist_ok=True)
    set_params(
        folder,
        fetch={"sources": ["local"], "local_path": str(mnist_npz), "verify_checksums": False},
        train={"epochs": 1},
    )
    commit_all(folder)
    return folder


def commit_all(folder: Path) -> None:
    """Make `folder` a git repository whose one commit holds every file there."""
    run(folder, "git", "init", "-q", "-b", "main")
    run(folder, "git", "add", "-A")
    run(folder, "git", "commit", "-qm", "project")


def copy_project(template: Path, folder: Path) -> Path:
    """An independent copy of a project made by make_project, git history and DVC cache too."""
    shutil.copytree(template, folder, symlinks=True)
    return folder
