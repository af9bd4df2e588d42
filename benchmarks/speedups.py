"""Benchmark: what each of the train stage's speed devices buys, by switching it off alone.

Runs the train stage (`stages/train.py`'s main, on data/prepared from `dvc repro`) in a fresh
process per run: once with every device on, and once per device with that device off, in rotating
order; prints the median wall time and peak memory of each whole process against all-on. Writes
the model into a temporary folder, so the workspace's outputs stay as they are.
Usage: `python -m benchmarks.speedups [--runs 5]`.
"""

import argparse
import os
import sys
import tempfile

from benchmarks.train_speed import ROOT, medians_of_rotated_runs
from mnist_pipeline.training.kernels import cpu_model

# Each device and how a run goes without it.
DEVICES = {
    "nothing": "every device on, as the stage runs",
    "fused RMSprop": "Keras' own RMSprop (mnist_pipeline/training/fused_rmsprop.py)",
    "tensors sharing memory": "numpy arrays handed to fit (speedups.as_tensor)",
    "collector paused": "no gc pause or freeze around TensorFlow's import",
    "pandas kept out": "Keras imports pandas (speedups.keras_without_pandas)",
    "steps per execution": "train.steps_per_execution 1 instead of params.yaml's",
    "teardown skipped": "the interpreter's full teardown at exit (cli.run)",
}

# One train stage run in this process with one device off (argv[1]); outputs under argv[2].
RUN = """
import argparse, contextlib, sys
from pathlib import Path
from mnist_pipeline.plumbing import cli, imports, paths
from mnist_pipeline.training import kernels, speedups
from mnist_pipeline.params import TrainParams, load_section
off, out = sys.argv[1], Path(sys.argv[2])
kernels.pin(load_section(TrainParams).threads, load_section(TrainParams).instruction_set)
del sys.argv[1:]  # the stage's own parser sees no arguments
if off == "collector paused":
    imports.importing_tensorflow = contextlib.nullcontext
if off == "pandas kept out":
    speedups.keras_without_pandas = contextlib.nullcontext
with imports.importing_tensorflow(), speedups.keras_without_pandas():
    import keras
    from mnist_pipeline.training import fit
    import stages.train as stage
if off == "fused RMSprop":
    fit.FusedRMSprop = keras.optimizers.RMSprop
if off == "tensors sharing memory":
    fit.as_tensor = lambda array: array
if off == "steps per execution":
    load_section = stage.load_section
    stage.load_section = lambda section: (
        load_section(section).model_copy(update={"steps_per_execution": 1})
        if section.name == "train" else load_section(section)
    )
paths.MODEL_FILE = out / "model.keras"
paths.SERVING_MODEL_FILE = out / "model.tflite"
paths.TRAIN_HISTORY_FILE = out / "train.csv"
paths.VALIDATION_HISTORY_FILE = out / "validation.csv"
cli.run(stage.main, argparse.ArgumentParser(), skip_teardown=off != "teardown skipped")
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs of each (default 5)")
    args = parser.parse_args()
    if not (ROOT / "data/prepared").is_dir():
        sys.exit("speedups: no data/prepared/; run `dvc repro` first")
    with tempfile.TemporaryDirectory() as out:
        commands = {device: [sys.executable, "-c", RUN, device, out] for device in DEVICES}
        medians = medians_of_rotated_runs(commands, args.runs)
    print(f"\nmachine: {cpu_model()}, {os.cpu_count()} CPUs; median of {args.runs} runs, with off:")
    base_seconds, base_peak = medians["nothing"]
    for device, (seconds, peak) in medians.items():
        print(
            f"  {device:<24} {seconds:6.2f} s {seconds / base_seconds:5.2f}x  "
            f"{peak:6.0f} MiB {peak / base_peak:5.2f}x   {DEVICES[device]}"
        )


if __name__ == "__main__":
    main()
