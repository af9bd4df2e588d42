"""Benchmark: the tutorial's plain Keras program against our train stage run through DVC, and
against train then evaluate, what `dvc repro` reruns after a train param is edited.

Runs each, in rotating order, several times on the same data (data/raw and data/prepared, made
by `dvc repro`), and prints the median wall time and peak memory of each whole process, their
ratios to the tutorial's, and the machine.
Usage: `make bench` or `python benchmarks/train_speed.py --runs 5`.
"""

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path

from mnist_pipeline.training.kernels import cpu_model

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

PROGRAMS = {
    "tutorial": [sys.executable, "benchmarks/tutorial_mnist.py"],
    "train stage": [str(BIN / "dvc"), "repro", "--force", "--single-item", "train"],
    # What editing a train param reruns: train, then evaluate.
    "train+evaluate": [str(BIN / "dvc"), "repro", "--force", "--downstream", "train"],
}


def measure(
    command: list[str], cwd: Path = ROOT, env: dict[str, str] | None = None
) -> tuple[float, float]:
    """Run `command` in `cwd` (with `env` added to the environment) to completion; return its
    wall seconds and peak resident memory in MiB.

    Peak memory is that of the largest process in the tree (the child or one it waited for):
    for `dvc repro` that is the stage's Python process.
    """
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", **(env or {})}
    start = time.perf_counter()
    process = subprocess.Popen(
        command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)  # reaped by wait4, not by Popen
    if process.returncode != 0:
        sys.exit(f"{' '.join(command)} failed in {cwd}")
    return seconds, usage.ru_maxrss / 1024  # ru_maxrss is in KiB on Linux


def machine() -> str:
    """The line that says where a benchmark ran."""
    return (
        f"machine: {cpu_model()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"Keras {version('keras')}"
    )


def medians_of_rotated_runs(
    commands: dict[str, list[str]], runs: int
) -> dict[str, tuple[float, float]]:
    """Run each command `runs` times, printing each run; the median wall seconds and peak MiB
    of each. The order rotates, so no command always runs on a machine another has warmed."""
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
    names, width = list(commands), max(map(len, commands))
    for run in range(1, runs + 1):
        for name in names[run % len(names) :] + names[: run % len(names)]:
            seconds, peak = measure(commands[name])
            results[name].append((seconds, peak))
            print(f"run {run}  {name:<{width}} {seconds:6.2f} s  {peak:7.0f} MiB", flush=True)
    return {
        name: (statistics.median(s for s, _ in each), statistics.median(m for _, m in each))
        for name, each in results.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs of each program (default 5)")
    args = parser.parse_args()
    if not (ROOT / "data/prepared").is_dir():
        sys.exit("train_speed: no data/prepared/; run `dvc repro` first")

    medians = medians_of_rotated_runs(PROGRAMS, args.runs)
    print(f"\n{machine()}")
    print(f"median of {args.runs} runs:")
    for name, (seconds, peak) in medians.items():
        print(f"  {name:<14} {seconds:6.2f} s  {peak:7.0f} MiB")
    base_seconds, base_mib = medians["tutorial"]
    for name in ("train stage", "train+evaluate"):
        seconds, mib = medians[name]
        print(f"{name} / tutorial: time {seconds / base_seconds:.2f}x, "
              f"memory {mib / base_mib:.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
