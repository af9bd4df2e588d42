"""Evidence that the pinned kernel path trains one set of bytes across CPUs and core counts.

Runs the train stage, a fresh process each time, in a temporary folder (the workspace's outputs
stay as they are), and prints the md5 of each model.keras it writes:
- on the tiny test set, under 1 and 2 logical CPUs, with the variables a user's shell could set
  against the pin (8 threads, oneDNN capped at AVX or AVX-512, TensorFlow's oneDNN rewrites off),
  and at train.threads 1;
- with `--qemu CPU ...`, the same tiny run on other CPUs emulated by QEMU (Debian's qemu-user:
  `apt-get install qemu-user`; `qemu-x86_64 -cpu help` lists them), e.g. EPYC-Rome-v2 (AMD Zen 2)
  and Haswell-v4 (Intel), both with AVX2 and no AVX-512. QEMU computes the approximate
  instructions (rsqrtps, rcpps) exactly, unlike any real CPU, so the same bytes there also show
  that no such instruction steers the results. About 2 minutes per CPU.
- with `--full`, the default model on full MNIST (data/prepared, from `dvc repro`) under 1 and 2
  logical CPUs: the md5s to compare with dvc.lock's models/model.keras.
Exits 1 unless every run of the same data gives the same md5.
With `--cost N`, instead: what the pin costs, the train stage's median wall time on full MNIST
over N rotated runs, pinned against this CPU's own kernels and against 8 threads.
Usage: `python -m benchmarks.kernel_paths [--qemu EPYC-Rome-v2 Haswell-v4] [--full] [--cost 5]`.
"""

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

from benchmarks.train_speed import medians_of_rotated_runs
from mnist_pipeline.training import kernels
from tests.support.shell import HOSTILE
from tests.support.synthetic import train_stage_folder

ROOT = Path(__file__).resolve().parent.parent

# Each run on the tiny set: (logical CPUs, variables set, train params changed, emulated CPU).
Run = tuple[int, dict[str, str], dict[str, int], str | None]
TINY_RUNS: dict[str, Run] = {
    "2 CPUs": (2, {}, {}, None),
    "1 CPU": (1, {}, {}, None),
    "2 CPUs, the shell's variables against the pin": (2, HOSTILE, {}, None),
    "1 CPU, ONEDNN_MAX_CPU_ISA=AVX": (1, {"ONEDNN_MAX_CPU_ISA": "AVX"}, {}, None),
    "2 CPUs, train.threads 1": (2, {}, {"threads": 1}, None),
}


def set_train_params(folder: Path, changes: dict[str, int | str]) -> None:
    """`folder`'s params.yaml: the workspace's, with `changes` to its train section."""
    document = yaml.safe_load((ROOT / "params.yaml").read_text())
    document["train"].update(changes)
    (folder / "params.yaml").write_text(yaml.safe_dump(document, sort_keys=False))


def train(folder: Path, run: Run) -> str:
    """Run the train stage in `folder` as `run` says; the md5 of the model.keras it writes."""
    cpus, variables, params, emulated = run
    set_train_params(folder, params)
    env = {key: value for key, value in os.environ.items() if key not in kernels.VARIABLES}
    command = [sys.executable, "-m", "stages.train"]
    if emulated:
        command = ["qemu-x86_64", "-cpu", emulated, *command]
    result = subprocess.run(
        command,
        cwd=folder,
        env={**env, **variables, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"},
        preexec_fn=lambda: os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:cpus]),
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        sys.exit(f"kernel_paths: the train stage failed: {result.stderr.strip()[-500:]}")
    return hashlib.md5((folder / "models" / "model.keras").read_bytes()).hexdigest()


def report(title: str, folder: Path, runs: dict[str, Run]) -> bool:
    """Train each of `runs` in `folder`, printing its md5; whether they all agree."""
    print(title, flush=True)
    digests = set()
    for name, run in runs.items():
        digest = train(folder, run)
        digests.add(digest)
        print(f"  {digest}  {name}", flush=True)
    return len(digests) == 1


# What the pin costs: the train stage pinned, and with each of its two settings let go.
COSTS: dict[str, dict[str, int | str]] = {
    "pinned (avx2, 2 threads)": {},
    "this CPU's kernels (native)": {"instruction_set": "native"},
    "8 threads": {"threads": 8},
    "native, 8 threads": {"instruction_set": "native", "threads": 8},
}


def cost(scratch: Path, runs: int) -> None:
    """Print the train stage's median time and memory with each of COSTS, against pinned."""
    commands = {}
    for number, (name, changes) in enumerate(COSTS.items()):
        folder = train_stage_folder(scratch / f"cost{number}", ROOT / "data" / "prepared")
        set_train_params(folder, changes)
        pythonpath = f"PYTHONPATH={ROOT}"
        commands[name] = [
            "env",
            "-C",
            str(folder),
            pythonpath,
            sys.executable,
            "-m",
            "stages.train",
        ]
    medians = medians_of_rotated_runs(commands, runs)
    base, _ = medians["pinned (avx2, 2 threads)"]
    print(f"median of {runs} runs of the train stage:")
    for name, (seconds, mib) in medians.items():
        print(f"  {name:<28} {seconds:6.2f} s  {mib:6.0f} MiB  {seconds / base:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--qemu", nargs="+", default=[], metavar="CPU", help="emulated CPUs")
    parser.add_argument("--full", action="store_true", help="also the full model on MNIST")
    parser.add_argument("--cost", type=int, metavar="N", help="time the pin's cost instead")
    args = parser.parse_args()
    if args.qemu and not shutil.which("qemu-x86_64"):
        sys.exit("kernel_paths: --qemu needs qemu-x86_64 (apt-get install qemu-user)")
    if (args.full or args.cost) and not (ROOT / "data" / "prepared").is_dir():
        sys.exit("kernel_paths: --full and --cost need data/prepared/; run `dvc repro` first")
    print(f"CPU: {kernels.cpu_model()}, {len(os.sched_getaffinity(0))} logical CPUs")
    if args.cost:
        with tempfile.TemporaryDirectory() as scratch:
            cost(Path(scratch), args.cost)
        return
    runs = TINY_RUNS | {f"QEMU's {cpu}": (2, {}, {}, cpu) for cpu in args.qemu}
    agree = []
    with tempfile.TemporaryDirectory() as scratch:
        tiny = train_stage_folder(Path(scratch) / "tiny")
        agree.append(report("tiny test set, params.yaml:", tiny, runs))
        if args.full:
            full = train_stage_folder(Path(scratch) / "full", ROOT / "data" / "prepared")
            full_runs = {name: TINY_RUNS[name] for name in ("2 CPUs", "1 CPU")}
            agree.append(report("full MNIST, params.yaml:", full, full_runs))
    if not all(agree):
        sys.exit("kernel_paths: the md5s differ")
    print("one md5 for every run of the same data")


if __name__ == "__main__":
    main()
