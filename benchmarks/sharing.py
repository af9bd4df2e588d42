"""Benchmark: sharing the pipeline's outputs through the local S3 server, and a parallel sweep.

Follows the walkthrough of docs/sharing.md in temporary clones of
this repository: starts `python -m mnist_pipeline.s3_server`, runs the `dvc remote` lines it
prints; clone A runs `dvc repro` (with this checkout's DVC cache as a shared cache: the data come
from it, but train reruns, as DVC's run cache does not restore stages with uncached outputs such
as the reports) and `dvc push`; clones B and C `dvc pull` and check that
`dvc repro` has nothing to run. Then B runs a small grid sweep from the queue with one worker
and C the same sweep with two. Prints the wall time of each step.
Usage: `python -m benchmarks.sharing` (after `make pipeline`).
"""

import argparse
import itertools
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.support.project import ENV as TEST_ENV
from tests.support.project import ROOT

ENV = {**os.environ, **TEST_ENV}  # the stages' `python` and `dvc`; a git identity
TIMEOUT = 1800  # seconds, for any one step
PROG = Path(sys.argv[0]).stem  # the benchmark running, this one or one importing its helpers
SWEEP = ["-S", "train.learning_rate=0.0005,0.002", "-S", "train.epochs=1,2"]


def run(repo: Path, *command: str) -> str:
    """Run `command` in `repo`; stop the benchmark with its output if it fails."""
    result = subprocess.run(
        command, cwd=repo, env=ENV, capture_output=True, text=True, timeout=TIMEOUT
    )
    if result.returncode != 0:
        sys.exit(f"{PROG}: {' '.join(command)} failed:\n{result.stdout}{result.stderr}")
    return result.stdout + result.stderr


def timed(repo: Path, *command: str) -> tuple[float, str]:
    start = time.perf_counter()
    log = run(repo, *command)
    return time.perf_counter() - start, log


def start_server() -> tuple[subprocess.Popen, list[list[str]]]:
    """The local S3 server on a free port, and the `dvc remote` commands it prints."""
    server = subprocess.Popen(
        [sys.executable, "-m", "mnist_pipeline.s3_server", "--port", "0"],
        cwd=ROOT,
        env=ENV,
        stdout=subprocess.PIPE,
        text=True,
    )
    printed = itertools.takewhile(str.strip, iter(server.stdout.readline, ""))
    commands = [shlex.split(line) for line in printed if line.startswith("dvc ")]
    if not commands:
        sys.exit("sharing: the S3 server did not start")
    return server, commands


def clone(origin: Path, folder: Path, remote: list[list[str]]) -> Path:
    run(folder.parent, "git", "clone", "-q", str(origin), folder.name)
    for command in remote:
        run(folder, *command)
    return folder


def tracked_size(repo: Path) -> tuple[int, int]:
    """Files and bytes of the DVC-tracked outputs (data/ and models/)."""
    files = [p for top in ("data", "models") for p in (repo / top).rglob("*") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)


def sweep(repo: Path, workers: int) -> float:
    """Queue the grid, run it with `workers` queue workers; seconds from start to all done."""
    run(repo, "dvc", "exp", "run", "--queue", *SWEEP)
    return run_queue(repo, workers)


def run_queue(repo: Path, workers: int) -> float:
    """Start DVC's queue with `workers` workers and wait until it is empty; the seconds it took.
    Stops the benchmark if an experiment of the queue failed."""
    start = time.perf_counter()
    run(repo, "dvc", "queue", "start", "--jobs", str(workers))
    try:
        while {"Queued", "Running"} & set(run(repo, "dvc", "queue", "status").split()):
            if time.perf_counter() - start > TIMEOUT:
                sys.exit(f"{PROG}: the queue did not finish in {TIMEOUT} s")
            time.sleep(1)
        seconds = time.perf_counter() - start
    finally:
        run(repo, "dvc", "queue", "stop", "--kill")
    status = run(repo, "dvc", "queue", "status")
    if "Failed" in status.split():
        sys.exit(f"{PROG}: an experiment of the queue failed:\n{status}")
    return seconds


def main() -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    server, remote = start_server()
    try:
        with tempfile.TemporaryDirectory(prefix="sharing-") as tmp:
            folder = Path(tmp)
            origin = folder / "origin.git"
            run(folder, "git", "clone", "-q", "--bare", str(ROOT), str(origin))

            a = clone(origin, folder / "a", remote)
            run(a, "dvc", "cache", "dir", "--local", str(ROOT / ".dvc/cache"))
            seconds, log = timed(a, "dvc", "repro")
            ran = [line.split("'")[1] for line in log.splitlines() if line.startswith("Running")]
            print(
                f"A: dvc repro  {seconds:6.1f} s  (ran: {', '.join(ran) or 'nothing'})", flush=True
            )
            if run(a, "git", "status", "--porcelain"):
                run(a, "git", "commit", "-qam", "Run the pipeline")
                run(a, "git", "push", "-q", "origin", "HEAD")
            files, size = tracked_size(a)
            seconds, _ = timed(a, "dvc", "push")
            print(
                f"A: dvc push   {seconds:6.1f} s  ({files} files, {size / 2**20:.0f} MiB)",
                flush=True,
            )

            for name in ("b", "c"):
                repo = clone(origin, folder / name, remote)
                seconds, _ = timed(repo, "dvc", "pull")
                print(f"{name.upper()}: dvc pull   {seconds:6.1f} s", flush=True)
                seconds, log = timed(repo, "dvc", "repro")
                if "Data and pipelines are up to date" not in log:
                    sys.exit(f"sharing: dvc repro after the pull had work to do:\n{log}")
                print(f"{name.upper()}: dvc repro  {seconds:6.1f} s  (nothing to run)", flush=True)

            grid = " ".join(SWEEP)
            one = sweep(folder / "b", workers=1)
            print(f"B: sweep {grid}, 1 worker   {one:6.1f} s", flush=True)
            two = sweep(folder / "c", workers=2)
            print(f"C: sweep {grid}, 2 workers  {two:6.1f} s", flush=True)
            print(f"2 workers / 1 worker: time {two / one:.2f}x")
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(TIMEOUT)
    print(f"machine: {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
