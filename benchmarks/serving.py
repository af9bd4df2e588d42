"""Benchmark: reading digits with the LiteRT export against the Keras model, whole processes.

Measures, in one run on this machine, each with `--model models/model.keras` (Keras and
TensorFlow, as before the export) and with the default `models/model.tflite` (LiteRT):
`predict` on 1 picture and on 100 (wall time and peak memory of the whole process, median of
--runs alternated runs); the web server's resident memory after its start and after 500 drawings
from 8 clients (benchmarks/web_load.py's load); the evaluate stage alone; and LiteRT reading the
test set with its built-in kernels (what the project uses) against its XNNPACK delegate. Needs
`make pipeline` first. Usage: `python -m benchmarks.serving [--runs 5]`.
"""

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.train_speed import ROOT, machine, measure
from benchmarks.web_load import drawn, rss_mib, send_all
from mnist_pipeline.plumbing import paths
from tests.support.launch import serving

MODELS = {"Keras": paths.MODEL_FILE, "LiteRT": paths.SERVING_MODEL_FILE}
LOAD = 500  # drawings sent to the web server, from CLIENTS clients
CLIENTS = 8


def pictures(folder: Path, count: int) -> list[Path]:
    """The first `count` MNIST test digits as the page draws them (dark on white, 280x280 PNG)."""
    digits = np.load(ROOT / paths.RAW_DIR / "x_test.npy", mmap_mode="r")[:count]
    files = []
    for number, digit in enumerate(digits):
        files.append(folder / f"{number:03}.png")
        files[-1].write_bytes(drawn(digit))
    return files


def median_of(runs: int, command: list[str]) -> tuple[float, float]:
    """Median wall seconds and peak MiB of `runs` runs of `command`."""
    results = [measure(command) for _ in range(runs)]
    return statistics.median(s for s, _ in results), statistics.median(m for _, m in results)


def web_memory(model: Path) -> tuple[float, float]:
    """The web server's resident MiB once started, and after LOAD drawings from CLIENTS."""
    digits = np.load(ROOT / paths.RAW_DIR / "x_test.npy", mmap_mode="r")[:100]
    bodies = [drawn(digits[i % len(digits)]) for i in range(LOAD)]
    with serving(ROOT / model) as server:
        started = rss_mib(server.process.pid)
        _, failures, _ = send_all(server.url, bodies, CLIENTS, time.monotonic() + 300)
        loaded = rss_mib(server.process.pid)
    if failures:
        sys.exit(f"serving: {failures} of {LOAD} requests to the web server failed")
    return started, loaded


def kernels(model: Path) -> dict[str, float]:
    """Seconds LiteRT takes to read the 10,000 test digits with `model`: with the built-in
    kernels the project uses (classifiers.LiteRTClassifier), and with the XNNPACK delegate."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    pixels = np.load(ROOT / paths.PREPARED_DIR / "x_test.npy")
    seconds = {}
    for name, kind in (
        ("built-in kernels", OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES),
        ("XNNPACK", OpResolverType.AUTO),
    ):
        interpreter = Interpreter(model_path=str(ROOT / model), experimental_op_resolver_type=kind)
        (given,), (taken,) = interpreter.get_input_details(), interpreter.get_output_details()
        interpreter.resize_tensor_input(given["index"], pixels.shape)
        interpreter.allocate_tensors()  # XNNPACK's INFO line, on stderr
        start = time.perf_counter()
        interpreter.set_tensor(given["index"], pixels)
        interpreter.invoke()
        interpreter.get_tensor(taken["index"])
        seconds[name] = time.perf_counter() - start
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs of each command (default 5)")
    args = parser.parse_args()
    if not all((ROOT / model).is_file() for model in MODELS.values()):
        sys.exit("serving: no models/model.keras or models/model.tflite; run `make pipeline`")
    predict = [sys.executable, "-m", "mnist_pipeline.predict"]
    print(machine())
    with tempfile.TemporaryDirectory() as folder:
        files = pictures(Path(folder), 100)
        for count in (1, 100):
            for name, model in MODELS.items():
                command = [*predict, "--model", str(model), *map(str, files[:count])]
                seconds, peak = median_of(args.runs, command)
                print(
                    f"predict, {count:3} picture(s), {name:<6}  {seconds:5.2f} s  {peak:5.0f} MiB"
                )
    for name, model in MODELS.items():
        started, loaded = web_memory(model)
        print(f"web server, {name:<6}  {started:5.0f} MiB after start, {loaded:5.0f} MiB after "
              f"{LOAD} drawings from {CLIENTS} clients")  # fmt: skip
    seconds, peak = median_of(args.runs, [sys.executable, "-m", "stages.evaluate"])
    print(f"evaluate stage alone (LiteRT)  {seconds:5.2f} s  {peak:5.0f} MiB")
    timings = ", ".join(f"{name} {s:.3f} s" for name, s in kernels(MODELS["LiteRT"]).items())
    print(f"LiteRT on the 10,000 test digits: {timings}")


if __name__ == "__main__":
    main()
