"""Benchmark: what training.FusedRMSprop buys over Keras' own RMSprop in the train stage's fit.

Trains the default network on data/prepared (made by `dvc repro`) with each optimizer in turn, in
fresh processes, alternating which goes first, and prints the median seconds of `train_model`
(build, compile, fit) and their ratio. Usage: `python -m benchmarks.fused_rmsprop [--runs 5]`.
"""

import argparse
import statistics
import subprocess
import sys

# One training run in a fresh process; prints its seconds. "stock" swaps in Keras' RMSprop.
RUN = """
import sys, time
from mnist_pipeline import cli, paths
from mnist_pipeline.files import load_arrays
from mnist_pipeline.params import ModelParams, TrainParams, load_section
with cli.importing_tensorflow():  # as the train stage does
    import keras
    from mnist_pipeline import training
if sys.argv[1] == "stock":
    training.make_optimizer = lambda params: keras.optimizers.RMSprop(
        learning_rate=params.learning_rate, name="optimizer")
data = load_arrays(paths.PREPARED_DIR, ("x_train", "y_train"), aligned=True)
model_params, train_params = load_section(ModelParams), load_section(TrainParams)
start = time.perf_counter()
training.train_model(data["x_train"], data["y_train"], model_params, train_params)
print(time.perf_counter() - start)
"""


def seconds(variant: str) -> float:
    result = subprocess.run(
        [sys.executable, "-c", RUN, variant], capture_output=True, text=True, check=True
    )
    return float(result.stdout.split()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs of each (default 5)")
    args = parser.parse_args()
    times: dict[str, list[float]] = {"fused": [], "stock": []}
    for run in range(1, args.runs + 1):
        for variant in sorted(times, reverse=run % 2 == 0):
            times[variant].append(seconds(variant))
            print(f"run {run}  {variant:<5} {times[variant][-1]:6.2f} s", flush=True)
    fused, stock = statistics.median(times["fused"]), statistics.median(times["stock"])
    print(f"median of {args.runs}: fused {fused:.2f} s, stock {stock:.2f} s; "
          f"stock / fused: {stock / fused:.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
