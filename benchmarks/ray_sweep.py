"""Benchmark: the same 4-point grid three ways on this machine, each in a clone of its own.

1. serially, one `dvc exp run -S ...` after another;
2. from DVC's queue, `dvc exp run --queue` and `dvc queue start -j 2`;
3. with `mnist-sweep` on Ray started by it, two trials at a time (--cpus-per-trial half the
   cores), as the queue's two workers.

Each clone starts from this checkout's commit, with its own DVC cache made of hard links to this
checkout's (the data are there; what one way caches, the next does not find). Prints each wall
time, the ratio of the sweep's to the queue's, and Ray's overhead per trial: the sweep's wall
time less its trials' own time (clone, `dvc exp run`, push, as each trial reports it) divided by
two at a time, per trial.

Usage: `python -m benchmarks.ray_sweep` (after `make pipeline`; commit first: the clones take
the last commit).
"""

import argparse
import os
import re
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.sharing import run, run_queue
from tests.support.project import ROOT

RATES, EPOCHS = ["0.0005", "0.002"], ["1", "2"]
GRID = ["-S", f"train.learning_rate={','.join(RATES)}", "-S", f"train.epochs={','.join(EPOCHS)}"]
AT_A_TIME = 2
TRIAL_SECONDS = re.compile(r" done .* in ([\d.]+)s$")


def clone(folder: Path, name: str) -> Path:
    """A clone of this checkout's commit whose DVC cache is hard links to this checkout's."""
    cache = run(ROOT, "dvc", "cache", "dir").strip()
    run(folder, "cp", "-al", cache, str(folder / f"{name}-cache"))
    run(folder, "git", "clone", "-q", str(ROOT), name)
    run(folder / name, "dvc", "cache", "dir", "--local", str(folder / f"{name}-cache"))
    run(folder / name, "dvc", "checkout", "-q")
    return folder / name


def serial(repo: Path) -> float:
    start = time.perf_counter()
    for rate in RATES:
        for epochs in EPOCHS:
            run(repo, "dvc", "exp", "run", "-S", f"train.learning_rate={rate}",
                "-S", f"train.epochs={epochs}")  # fmt: skip
    return time.perf_counter() - start


def queued(repo: Path) -> float:
    start = time.perf_counter()
    run(repo, "dvc", "exp", "run", "--queue", *GRID)
    return time.perf_counter() - start + run_queue(repo, AT_A_TIME)


def swept(repo: Path) -> tuple[float, list[float]]:
    """The sweep's wall time, and each trial's own seconds as it reports them."""
    cpus = str((os.cpu_count() or AT_A_TIME) / AT_A_TIME)
    start = time.perf_counter()
    log = run(repo, sys.executable, "-m", "mnist_pipeline.sweep", *GRID, "--cpus-per-trial", cpus)
    seconds = time.perf_counter() - start
    trials = [float(m.group(1)) for line in log.splitlines() if (m := TRIAL_SECONDS.search(line))]
    if len(trials) != len(RATES) * len(EPOCHS):
        sys.exit(f"ray_sweep: not every point of the sweep was done:\n{log}")
    return seconds, trials


def main() -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    grid = " ".join(GRID)
    # Hard links need the cache's filesystem: the temporary folder if it is there.
    cache = Path(run(ROOT, "dvc", "cache", "dir").strip())
    same = cache.stat().st_dev == Path(tempfile.gettempdir()).stat().st_dev
    with tempfile.TemporaryDirectory(prefix="ray-sweep-", dir=None if same else ROOT) as tmp:
        folder = Path(tmp)
        one = serial(clone(folder, "serial"))
        print(f"{grid}: serially, dvc exp run       {one:6.1f} s", flush=True)
        two = queued(clone(folder, "queue"))
        print(f"{grid}: dvc queue start -j {AT_A_TIME}        {two:6.1f} s", flush=True)
        three, trials = swept(clone(folder, "sweep"))
        print(f"{grid}: mnist-sweep, {AT_A_TIME} at a time    {three:6.1f} s", flush=True)
    overhead = (three - sum(trials) / AT_A_TIME) / len(trials)
    print(f"sweep / queue: time {three / two:.2f}x; sweep / serial: {three / one:.2f}x")
    print(f"Ray's overhead per trial: {overhead:.1f} s (trials' own time {sum(trials):.1f} s)")
    print(f"machine: {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
