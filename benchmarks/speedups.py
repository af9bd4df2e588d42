"""Benchmark: what each of the train stage's speed devices buys, by switching it off alone, and
what each setting tried and not kept would buy, by switching it on alone.

Runs the train stage (`stages/train.py`'s main, on data/prepared from `dvc repro`) in a fresh
process per run: once with every device on, once per device with that device off, and once per
candidate with that setting on, in rotating order; prints the median wall time and peak memory
of each whole process against all-on, and whether its model.keras has all-on's bytes. Writes the
models into a temporary folder, so the workspace's outputs stay as they are.
Usage: `python -m benchmarks.speedups [--runs 5]`.
"""

import argparse
import hashlib
import os
import sys
import tempfile
from pathlib import Path

from benchmarks.train_speed import ROOT, medians_of_rotated_runs
from mnist_pipeline.training.kernels import cpu_model

# Each device and how a run goes without it.
DEVICES = {
    "nothing": "every device on, as the stage runs",
    "fused RMSprop": "Keras' own RMSprop (mnist_pipeline/training/fused_rmsprop.py)",
    "tensors sharing memory": "numpy arrays handed to fit (speedups.as_tensor)",
    "built before fit": "Keras builds optimizer and metrics in the step's first trace: 2 traces",
    "collector paused": "no gc pause or freeze around TensorFlow's import",
    "pandas kept out": "Keras imports pandas (speedups.keras_without_pandas)",
    "steps per execution": "train.steps_per_execution 1 instead of params.yaml's",
    "teardown skipped": "the interpreter's full teardown at exit (cli.run)",
}
# Settings TensorFlow offers that leave the kernels as they are, each tried on alone: what the
# executor's and oneDNN's threads and the graph optimizer could still give on the pinned path.
CANDIDATES = {
    "one inter-op thread": "TF_NUM_INTEROP_THREADS=1: the step's ops one at a time",
    "oneDNN on the caller": "TF_ONEDNN_THREADPOOL_USE_CALLER_THREAD=1: one wake-up less a product",
    "lean graph optimizer": "grappler's passes off but remapping (which fuses the kernels)",
}
# Grappler's passes that `lean graph optimizer` turns off (tf.config.optimizer).
GRAPPLER_PASSES = (
    "constant_folding",
    "shape_optimization",
    "arithmetic_optimization",
    "dependency_optimization",
    "loop_optimization",
    "function_optimization",
    "debug_stripper",
    "implementation_selector",
    "layout_optimizer",
)

# One train stage run in this process with one device off or one candidate on (argv[1]);
# outputs under argv[2].
RUN = """
import argparse, contextlib, os, sys
from pathlib import Path
from mnist_pipeline.plumbing import cli, imports, paths
from mnist_pipeline.training import kernels, speedups
from mnist_pipeline.params import TrainParams, load_section
variant, out = sys.argv[1], Path(sys.argv[2])
kernels.pin(load_section(TrainParams).threads, load_section(TrainParams).instruction_set)
del sys.argv[1:]  # the stage's own parser sees no arguments
if variant == "one inter-op thread":
    os.environ["TF_NUM_INTEROP_THREADS"] = "1"
    kernels.check_pinned = lambda threads, instruction_set: None  # it would refuse 1 inter-op
if variant == "oneDNN on the caller":
    os.environ["TF_ONEDNN_THREADPOOL_USE_CALLER_THREAD"] = "1"
if variant == "collector paused":
    imports.importing_tensorflow = contextlib.nullcontext
if variant == "pandas kept out":
    speedups.keras_without_pandas = contextlib.nullcontext
with imports.importing_tensorflow(), speedups.keras_without_pandas():
    import keras
    from mnist_pipeline.training import fit
    import stages.train as stage
if variant == "lean graph optimizer":
    import tensorflow as tf
    from benchmarks.speedups import GRAPPLER_PASSES
    tf.config.optimizer.set_experimental_options(dict.fromkeys(GRAPPLER_PASSES, False))
if variant == "fused RMSprop":
    fit.FusedRMSprop = keras.optimizers.RMSprop
if variant == "tensors sharing memory":
    fit.as_tensor = lambda array: array
if variant == "built before fit":
    fit.build_before_fit = lambda model, x, y: None
if variant == "steps per execution":
    load_section = stage.load_section
    stage.load_section = lambda section: (
        load_section(section).model_copy(update={"steps_per_execution": 1})
        if section.name == "train" else load_section(section)
    )
paths.MODEL_FILE = out / "model.keras"
paths.SERVING_MODEL_FILE = out / "model.tflite"
paths.TRAIN_HISTORY_FILE = out / "train.csv"
paths.VALIDATION_HISTORY_FILE = out / "validation.csv"
cli.run(stage.main, argparse.ArgumentParser(), skip_teardown=variant != "teardown skipped")
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs of each (default 5)")
    args = parser.parse_args()
    if not (ROOT / "data/prepared").is_dir():
        sys.exit("speedups: no data/prepared/; run `dvc repro` first")
    variants = {**DEVICES, **CANDIDATES}
    with tempfile.TemporaryDirectory() as scratch:
        folders = {name: Path(scratch, str(number)) for number, name in enumerate(variants)}
        for folder in folders.values():
            folder.mkdir()
        commands = {
            name: [sys.executable, "-c", RUN, name, str(folders[name])] for name in variants
        }
        medians = medians_of_rotated_runs(commands, args.runs)
        models = {name: model_digest(folder / "model.keras") for name, folder in folders.items()}
    print(f"\nmachine: {cpu_model()}, {os.cpu_count()} CPUs; median of {args.runs} runs")
    base_seconds, base_peak = medians["nothing"]
    for title, group in (("with off:", DEVICES), ("with on:", CANDIDATES)):
        print(title)
        for name, description in group.items():
            seconds, peak = medians[name]
            model = "same model" if models[name] == models["nothing"] else "other model"
            print(
                f"  {name:<24} {seconds:6.2f} s {seconds / base_seconds:5.2f}x  "
                f"{peak:6.0f} MiB {peak / base_peak:5.2f}x  {model:<11}  {description}"
            )


def model_digest(path: Path) -> str:
    """The md5 of a trained model.keras, as dvc.lock records it."""
    return hashlib.md5(path.read_bytes()).hexdigest()


if __name__ == "__main__":
    main()
