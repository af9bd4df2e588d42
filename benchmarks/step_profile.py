"""Benchmark: where a training step's time goes on the pinned kernel path, op by op, and how far
`fit` is from the time its matrix products take.

In one process pinned as the train stage pins (params.yaml's train.threads and
train.instruction_set, on data/prepared from `dvc repro`):
1. `train_model` as the stage runs it, untraced: `fit`'s wall time over every step, each
   epoch's and each execution's (a call into TensorFlow that runs steps_per_execution steps),
   and how many times Keras traced the step. Then what the stage does around `fit`, each part
   timed: TensorFlow's import (and pandas', which the stage keeps out of it), train_model
   outside fit's epochs (building, compiling, the data set), saving the model (Keras' save,
   then the rewrite that takes out its dates), the LiteRT export and its check, and DVC's own
   start-up and dependency check (`dvc status train`, in a process of its own).
2. `train_model` again for 2 epochs, the second traced with TensorFlow's profiler; its trace
   (an XSpace protobuf) parsed op by op and grouped per step: matrix products, the optimizer
   update, element-wise and other ops, the executor's gaps between ops, Keras' Python between
   its calls into TensorFlow, and the data feed, which runs on tf.data's own threads alongside.
3. Each matrix product a step makes (the Dense layers' forward products, their weight gradients
   and the input gradients of every layer but the first) in a `tf.function` loop of its own: the
   rate TensorFlow reaches for those shapes here, the matrix-product limit of a step, and fit's
   ratio to it.
Usage: `python -m benchmarks.step_profile [--build-in-trace]` (part of `make bench`).
"""

import argparse
import collections
import contextlib
import io
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from benchmarks.train_speed import BIN
from mnist_pipeline.params import ModelParams, TrainParams, load_section
from mnist_pipeline.plumbing import imports, paths
from mnist_pipeline.training import kernels, speedups

if TYPE_CHECKING:
    import keras
    import numpy as np

# TensorFlow's op types that multiply matrices (oneDNN's, as the pinned path rewrites them).
MATMUL_TYPES = ("MatMul", "_MklMatMul", "_MklNativeFusedMatMul", "_MklFusedMatMul")
GROUPS = (
    "matrix products",
    "optimizer update",
    "element-wise and other ops",
    "executor gaps between ops",
    "Python in Keras' fit",
)
REPEATS, LOOP = 20, 50  # matrix-product timing: best of REPEATS loops of LOOP products (many
# short loops: one of them more likely to miss the other processes on a shared machine)
# A matrix product: (m, k, n, transpose_a, transpose_b), m x k times k x n.
Shape = tuple[int, int, int, bool, bool]


class Clock:
    """Wall time of `fit`, of each epoch and of each execution (a call into TensorFlow that runs
    steps_per_execution steps: Keras calls the batch hooks once per execution), from Keras'
    callbacks."""

    def __init__(self) -> None:
        self.marks: dict[str, float] = {}
        self.executions: list[tuple[int, float]] = []  # (first step, seconds) of each execution

    def callback(self, on_epoch: Callable[[int, str], None] | None = None) -> object:
        import keras

        clock = self

        class Marks(keras.callbacks.Callback):
            def on_train_begin(self, logs: object = None) -> None:
                clock.marks["fit"] = time.perf_counter()

            def on_epoch_begin(self, epoch: int, logs: object = None) -> None:
                if on_epoch:
                    on_epoch(epoch, "begin")
                clock.marks[f"epoch {epoch}"] = time.perf_counter()

            def on_train_batch_begin(self, batch: int, logs: object = None) -> None:
                clock.executions.append((batch, time.perf_counter()))

            def on_train_batch_end(self, batch: int, logs: object = None) -> None:
                first, start = clock.executions[-1]
                clock.executions[-1] = (first, time.perf_counter() - start)

            def on_epoch_end(self, epoch: int, logs: object = None) -> None:
                clock.marks[f"epoch {epoch}"] = time.perf_counter() - clock.marks[f"epoch {epoch}"]
                if on_epoch:
                    on_epoch(epoch, "end")

            def on_train_end(self, logs: object = None) -> None:
                clock.marks["fit"] = time.perf_counter() - clock.marks["fit"]

        return Marks()


def steps_per_epoch(num_samples: int, params: TrainParams) -> int:
    """The batches of one epoch, by Keras' rule (the first floor(N * (1 - split)) images train)."""
    return math.ceil(math.floor(num_samples * (1 - params.validation_split)) / params.batch_size)


def merged_length(intervals: Iterable[tuple[int, int]]) -> int:
    """The length of the union of (start, end) intervals."""
    total, reach = 0, None
    for start, end in sorted(intervals):
        if reach is None or start > reach:
            total += end - start
            reach = end
        elif end > reach:
            total += end - reach
            reach = end
    return total


def parse_trace(folder: Path) -> dict[str, object]:
    """Per-op times (picoseconds) from the XSpace the profiler wrote under `folder`: the ops on
    the executor's threads by (group, op type), their busy time, TensorFlow's executions of
    Keras' step function, and the data feed's top-level work on tf.data's threads."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    (trace,) = folder.rglob("*.xplane.pb")
    space = xplane_pb2.XSpace()
    space.ParseFromString(trace.read_bytes())
    (host,) = (plane for plane in space.planes if plane.name == "/host:CPU")
    names = {key: metadata.name for key, metadata in host.event_metadata.items()}
    ops: collections.Counter[tuple[str, str]] = collections.Counter()
    busy: list[tuple[int, int]] = []
    executions = feed = 0
    for line in host.lines:
        for event in line.events:
            name = names[event.metadata_id]
            if line.name == "python" and name.startswith("EagerLocalExecute: __inference_multi"):
                executions += event.duration_ps
            elif line.name.startswith("tf_data_iterator") and name == "Iterator::Root":
                feed += event.duration_ps  # a batch made, the work nested under it included
            # An op is "scope/name:Type"; the executor's own markers are "Class::method".
            elif line.name.startswith("tf_Compute") and ":" in name and "::" not in name:
                scope, _, op_type = name.rpartition(":")
                ops[(op_group(scope, op_type), op_type)] += event.duration_ps
                start = line.timestamp_ns * 1000 + event.offset_ps
                busy.append((start, start + event.duration_ps))
    return {"ops": ops, "busy": merged_length(busy), "executions": executions, "feed": feed}


def op_group(scope: str, op_type: str) -> str:
    """Which of GROUPS an op of the step belongs to, by its type and name scope."""
    if op_type in MATMUL_TYPES:
        return "matrix products"
    if "/optimizer/" in f"/{scope}":
        return "optimizer update"
    return "element-wise and other ops"


def matmul_shapes(model: "keras.Model", params: TrainParams) -> list[Shape]:
    """Each matrix product of one training step of `model`'s Dense layers, as (m, k, n,
    transpose_a, transpose_b): forward x @ W, weight gradient x^T @ dy, and input gradient
    dy @ W^T for every layer but the first (nothing needs the gradient of the pixels)."""
    batch, shapes = params.batch_size, []
    kernels_2d = [w for w in model.trainable_weights if len(w.shape) == 2]
    for number, kernel in enumerate(kernels_2d):
        inputs, units = kernel.shape
        shapes += [(batch, inputs, units, False, False), (inputs, batch, units, True, False)]
        if number:
            shapes.append((batch, units, inputs, False, True))
    return shapes


def matmul_seconds(m: int, k: int, n: int, transpose_a: bool, transpose_b: bool) -> float:
    """Seconds one (m x k) @ (k x n) product takes in a `tf.function` loop, best of REPEATS."""
    import numpy as np
    import tensorflow as tf

    random = np.random.default_rng(0)
    a_shape = (k, m) if transpose_a else (m, k)
    b_shape = (n, k) if transpose_b else (k, n)
    a = tf.constant(random.random(a_shape, np.float32))
    b = tf.constant(random.random(b_shape, np.float32))

    @tf.function
    def loop() -> tf.Tensor:
        total = tf.constant(0.0)
        for _ in tf.range(LOOP):  # each product used, so none is optimized away
            product = tf.linalg.matmul(a, b, transpose_a=transpose_a, transpose_b=transpose_b)
            total += product[0, 0]
        return total

    loop()  # traced and warmed up
    best = math.inf
    for _ in range(REPEATS):
        start = time.perf_counter()
        loop().numpy()
        best = min(best, time.perf_counter() - start)
    return best / LOOP


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--build-in-trace",
        action="store_true",
        help="leave the optimizer's and metrics' variables to the step's first trace, as Keras "
        "does, so fit traces the step twice (what speedups.build_before_fit saves)",
    )
    args = parser.parse_args()
    if not paths.PREPARED_DIR.is_dir():
        sys.exit("step_profile: no data/prepared/; run `dvc repro` first")
    model_params, train_params = load_section(ModelParams), load_section(TrainParams)
    if model_params.kind != "dense":
        sys.exit("step_profile: profiles the dense network (model.kind: dense in params.yaml)")
    load = os.getloadavg()[0]
    data = speedups.load_aligned_arrays(paths.PREPARED_DIR, ("x_train", "y_train"))
    kernels.pin(train_params.threads, train_params.instruction_set)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    start = time.perf_counter()
    with imports.importing_tensorflow(), speedups.keras_without_pandas():
        import tensorflow as tf

        from mnist_pipeline.training import fit as stage_fit
        from mnist_pipeline.training.fit import train_model
        from tests.support.traces import counting_traces
    if args.build_in_trace:
        stage_fit.build_before_fit = lambda model, x, y: None
    around = {"import TensorFlow, Keras and our modules": time.perf_counter() - start}
    start = time.perf_counter()
    with imports.importing_tensorflow():  # its objects frozen too: no collection scans them
        import pandas  # noqa: F401  # what keras_without_pandas saves the stage
    around["pandas' import, which the stage leaves out"] = time.perf_counter() - start
    x, y = data["x_train"], data["y_train"]
    steps = steps_per_epoch(len(x), train_params)

    # 1. The stage's fit, untraced; then what the stage does around it.
    fit = Clock()
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()), counting_traces() as traces:  # progress lines
        model, history = train_model(x, y, model_params, train_params, [fit.callback()])
    around["train_model outside fit's epochs"] = time.perf_counter() - start - fit.marks["fit"]
    with tempfile.TemporaryDirectory() as scratch:
        around |= time_outputs(Path(scratch), model, history, x)
    around["DVC: `dvc status train`"] = seconds_of([str(BIN / "dvc"), "status", "train"])

    # 2. Two epochs, the second traced: a step in its steady state.
    def trace_second(epoch: int, moment: str) -> None:
        if epoch == 1 and moment == "begin":
            tf.profiler.experimental.start(str(trace_dir))
        elif epoch == 1:
            tf.profiler.experimental.stop()

    traced = Clock()
    with tempfile.TemporaryDirectory() as scratch:
        trace_dir = Path(scratch)
        two_epochs = train_params.model_copy(update={"epochs": 2})
        with contextlib.redirect_stdout(io.StringIO()):
            train_model(x, y, model_params, two_epochs, [traced.callback(trace_second)])
        trace = parse_trace(trace_dir)

    # 3. The step's matrix products, each alone.
    timed = [(shape, matmul_seconds(*shape)) for shape in matmul_shapes(model, train_params)]

    print(
        f"machine: {kernels.cpu_model()}, {os.cpu_count()} CPUs, load average {load:.1f} at the "
        f"start (other processes share the CPUs when above 0); TensorFlow {tf.__version__}"
    )
    print(
        f"pinned: train.instruction_set {train_params.instruction_set}, train.threads "
        f"{train_params.threads}; batch {train_params.batch_size}, steps_per_execution "
        f"{train_params.steps_per_execution}, optimizer {train_params.optimizer}"
    )
    report_breakdown(trace, traced.marks["epoch 1"], steps)
    print("\nthe stage around fit:")
    for part, seconds in around.items():
        print(f"  {part:<44} {seconds:5.2f} s")
    report_limit(timed, fit.marks["fit"], steps * train_params.epochs)
    limit = sum(seconds for _, seconds in timed)
    report_executions(fit.executions, steps, train_params.steps_per_execution, limit)
    print(f"Keras traced the training step (its train_step) {traces[0]} time(s) in that fit")
    epochs = [fit.marks[f"epoch {epoch}"] for epoch in range(train_params.epochs)]
    if len(epochs) > 1:
        later = statistics.median(epochs[1:])
        print(
            f"fit's first epoch against the median of the others: {epochs[0]:.2f} s, "
            f"{later:.2f} s (the difference, {epochs[0] - later:.2f} s: the first call's "
            "tracing of the step and its graph's optimization)"
        )


def time_outputs(
    folder: Path, model: "keras.Model", history: dict[str, list[float]], sample: "np.ndarray"
) -> dict[str, float]:
    """Seconds of each part of the train stage's writing, as stages/train.py runs them, into
    `folder`; Keras' own save timed alone too, so that the rewrite's share shows."""
    from mnist_pipeline.network.archive import save_model
    from mnist_pipeline.training.export import check_export
    from mnist_pipeline.training.fit import save_history

    parts: dict[str, Callable[[], object]] = {
        "Keras' model.save": lambda: model.save(folder / "plain.keras"),
        "save_model (model.save, then the rewrite)": lambda: save_model(model, folder / "m.keras"),
        "LiteRT export (model.export)": lambda: model.export(
            str(folder / "m.tflite"), format="litert", verbose=False
        ),
        "its check (check_export)": lambda: check_export(model, folder / "m.tflite", sample),
        "save_history": lambda: save_history(history, folder / "t.csv", folder / "v.csv"),
    }
    seconds = {}
    for name, part in parts.items():
        start = time.perf_counter()
        part()
        seconds[name] = time.perf_counter() - start
    return seconds


def seconds_of(command: list[str]) -> float:
    """Wall seconds of `command` run to completion, its output discarded."""
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def report_breakdown(trace: dict[str, object], epoch_seconds: float, steps: int) -> None:
    """Print the traced epoch's time per step by GROUPS, with the biggest op types of each."""
    ops: collections.Counter[tuple[str, str]] = trace["ops"]  # type: ignore[assignment]
    picoseconds = {group: sum(t for (g, _), t in ops.items() if g == group) for group in GROUPS}
    picoseconds["executor gaps between ops"] = trace["executions"] - trace["busy"]
    picoseconds["Python in Keras' fit"] = epoch_seconds * 1e12 - trace["executions"]
    total = sum(picoseconds.values())
    print(
        f"\ntraced epoch: {steps} steps, {epoch_seconds:.2f} s, "
        f"{epoch_seconds * 1e3 / steps:.2f} ms a step; per step (ops on TensorFlow's inter-op "
        f"threads overlap: the parts add up to {total / (epoch_seconds * 1e12):.2f}x the step):"
    )
    for group in GROUPS:
        biggest = sorted(((t, op) for (g, op), t in ops.items() if g == group), reverse=True)[:3]
        detail = ", ".join(f"{op} {t / steps / 1e9:.2f}" for t, op in biggest)
        print(
            f"  {group:<28} {picoseconds[group] / steps / 1e9:5.2f} ms "
            f"{picoseconds[group] / total:4.0%}  {detail}".rstrip()
        )
    print(
        f"  {'data feed (tf.data threads)':<28} {trace['feed'] / steps / 1e9:5.2f} ms        "
        "alongside the step, on the same cores"
    )


def report_limit(timed: list[tuple[Shape, float]], fit_seconds: float, fit_steps: int) -> None:
    """Print each matrix product's time and rate, their sum (the limit of a step), and fit's
    time per step against it."""
    print(f"\nmatrix products of a step, each in a tf.function loop (best of {REPEATS} x {LOOP}):")
    for (m, k, n, transpose_a, transpose_b), seconds in timed:
        form = f"{m}x{k}{'^T' if transpose_a else ''} @ {k}x{n}{'^T' if transpose_b else ''}"
        rate = 2 * m * k * n / seconds / 1e9
        print(f"  {form:<22} {seconds * 1e3:6.3f} ms  {rate:6.1f} GFLOP/s")
    limit = sum(seconds for _, seconds in timed)
    print(f"  {'limit of a step':<22} {limit * 1e3:6.3f} ms")
    per_step = fit_seconds / fit_steps
    print(
        f"\nfit, untraced: {fit_seconds:.2f} s for {fit_steps} steps, {per_step * 1e3:.2f} ms a "
        f"step (Keras' tracing of the step included)"
    )
    print(f"fit / matrix-product limit: {per_step / limit:.2f}x")


def report_executions(
    executions: list[tuple[int, float]], steps: int, steps_per_execution: int, limit: float
) -> None:
    """Print the time per step of fit's full executions after the first (which traces the step),
    fastest and median, against the matrix-product limit of a step: the steady state alone.
    Keras names each execution by its first step, counted from 0 in every epoch of `steps`."""
    per_step = sorted(
        seconds / steps_per_execution
        for first, seconds in executions[1:]
        if first + steps_per_execution <= steps  # an epoch's last execution may run fewer
    )
    if not per_step:
        return
    fastest, median = per_step[0], statistics.median(per_step)
    print(
        f"fit's {len(per_step)} full executions of {steps_per_execution} steps after the first: "
        f"fastest {fastest * 1e3:.2f} ms a step ({fastest / limit:.2f}x the limit), median "
        f"{median * 1e3:.2f} ms ({median / limit:.2f}x)"
    )
    print(
        f"fit's first execution (the step's tracing and its graph's optimization included): "
        f"{executions[0][1]:.2f} s, against {median * steps_per_execution:.2f} s for the median "
        "full one"
    )


if __name__ == "__main__":
    main()
