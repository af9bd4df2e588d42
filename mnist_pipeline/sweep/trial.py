"""One point of a sweep, as a worker runs it: `dvc exp run` in a fresh clone of the project at
the sweep's commit, never the user's workspace, then `dvc exp push` of the experiment back.

No Ray here (mnist_pipeline.sweep.command wraps this in a Ray task), and no TensorFlow: the training
happens in the `dvc exp run` child process, as in a plain `dvc exp run`.
"""

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from mnist_pipeline.plumbing import paths
from mnist_pipeline.plumbing.errors import PipelineError

# DVC's line when a stage command fails; the stage's own one-line reason is printed above it.
DVC_STAGE_FAILED = "ERROR: failed to reproduce"


@dataclass(frozen=True)
class Checkout:
    """Where a trial gets the project from and where its experiment goes."""

    repository: str  # git URL or path: cloned at `commit`, and the experiment's ref pushed to it
    commit: str
    # The DVC cache to share, on a filesystem the worker sees (this machine); None: the worker
    # pulls the data from the DVC remote and pushes the experiment's outputs there.
    cache_dir: str | None
    # Where the clones go (the driver removes it after the sweep, with what a killed trial left
    # there); None: the worker's temporary folder.
    scratch: str | None = None


@dataclass(frozen=True)
class Point:
    """One experiment of the grid: its name and its `dvc exp run -S` values."""

    name: str
    overrides: tuple[str, ...]


@dataclass(frozen=True)
class Outcome:
    """What a trial brought back: its metrics (reports/metrics.json), or why it failed."""

    name: str
    metrics: dict | None
    error: str | None
    seconds: float


def environment() -> dict[str, str]:
    """The children's environment: this interpreter's `python` and `dvc` first on PATH (the
    stages call `python`), whatever PATH the Ray worker was started with."""
    bin_dir = str(Path(sys.executable).parent)
    return {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}


class TrialFailed(PipelineError):
    """A step of the trial (or of the sweep around it) failed: the message is its one line."""


def step(command: list[str], cwd: Path, what: str) -> str:
    """Run one step of the trial and return its stdout; its failure as TrialFailed naming
    `what` and why."""
    result = subprocess.run(command, cwd=cwd, env=environment(), capture_output=True, text=True)
    if result.returncode != 0:
        raise TrialFailed(f"{what}: {failure_line(result.stdout + result.stderr)}")
    return result.stdout


def dvc(clone: Path, what: str, *arguments: str) -> None:
    step([sys.executable, "-m", "dvc", *arguments], clone, what)


def failure_line(output: str) -> str:
    """The one line that says why a dvc (or git) command failed: a stage's own message (the
    line before DVC's "failed to reproduce"), else the last ERROR line, else the last line."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    for index, line in enumerate(lines):
        if line.startswith(DVC_STAGE_FAILED) and index > 0:
            return lines[index - 1]
    errors = [line for line in lines if line.startswith("ERROR")]
    return (errors or lines or ["failed with no output"])[-1]


def exp_run_arguments(point: Point, checkout: Checkout) -> list[str]:
    sets = [argument for override in point.overrides for argument in ("-S", override)]
    pull = [] if checkout.cache_dir else ["--pull"]
    return ["exp", "run", "--name", point.name, *pull, *sets]


def run(point: Point, checkout: Checkout) -> Outcome:
    """Run `point` in a clone made for it in a temporary folder, and push its experiment to
    `checkout.repository`: all of it or, if anything fails, none of it."""
    start = time.monotonic()
    if checkout.scratch:
        Path(checkout.scratch).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"{point.name}-", dir=checkout.scratch) as scratch:
        clone = Path(scratch) / "project"
        try:
            step(["git", "clone", "--quiet", "--no-checkout", checkout.repository, str(clone)],
                 Path(scratch), "git clone")  # fmt: skip
            step(["git", "checkout", "--quiet", "--detach", checkout.commit], clone, "git checkout")
            if checkout.cache_dir:
                dvc(clone, "dvc cache dir", "cache", "dir", "--local", checkout.cache_dir)
            # The stage's own reason when it fails, as a plain `dvc exp run` prints it.
            dvc(clone, "dvc exp run", *exp_run_arguments(point, checkout))
            metrics = json.loads((clone / paths.METRICS_FILE).read_text())
            # The experiment's git ref (and, with no shared cache, its outputs to the DVC
            # remote): one ref update, so a trial killed before it leaves nothing behind.
            no_cache = ["--no-cache"] if checkout.cache_dir else []
            dvc(clone, "dvc exp push", "exp", "push", *no_cache, checkout.repository, point.name)
        except TrialFailed as error:
            return Outcome(point.name, None, str(error), time.monotonic() - start)
    return Outcome(point.name, metrics, None, time.monotonic() - start)
