"""Benchmark: the two model families, dense and convnet, trained, tested and read side by side.

Trains the dense network and the convnet (model.kind) at the committed training params, and the
convnet at the epochs docs/models.md recommends, each by the train stage itself
(`python -m stages.train`, without DVC) in a temporary folder with its own params.yaml and outputs
and this checkout's data: the workspace's models and reports stay as they are. Each model is then
tested by the evaluate stage, and reads the first --count MNIST test digits rendered as drawings
and as photos of paper, as `benchmarks/predict_accuracy.py` renders and reads them. Prints, for
each: test accuracy, the train stage's wall time and peak memory, the evaluate stage's wall time
(the LiteRT model reading the 10,000 test digits), the size of that LiteRT model, and how often
`predict` reads the true digit of each kind of picture.
Usage: `python -m benchmarks.model_families [--count 1000]` after `dvc repro`.
"""

import argparse
import json
import os
import platform
import sys
import tempfile
from importlib.metadata import version
from pathlib import Path

import numpy as np
import yaml

from benchmarks.predict_accuracy import KINDS, mnist_test_digits, read_pictures, render
from benchmarks.train_speed import measure
from mnist_pipeline.plumbing import paths
from mnist_pipeline.training.kernels import cpu_model
from tests.support.project import ROOT, set_params

RECOMMENDED_EPOCHS = 12  # docs/models.md: where the convnet's test accuracy stops rising

# Each run's label and its changes to the committed params.yaml, by section.
RUNS = {
    "dense": {"model": {"kind": "dense"}},
    "convnet": {"model": {"kind": "convnet"}},
    f"convnet, {RECOMMENDED_EPOCHS} epochs": {
        "model": {"kind": "convnet"},
        "train": {"epochs": RECOMMENDED_EPOCHS},
    },
}


def train_and_test(folder: Path, changes: dict[str, dict]) -> tuple[float, float, float, float]:
    """Run the train then the evaluate stage in `folder` with params.yaml changed by `changes`;
    return the train stage's wall seconds and peak MiB, the evaluate stage's wall seconds, and
    the test accuracy."""
    (folder / "params.yaml").write_bytes((ROOT / "params.yaml").read_bytes())
    set_params(folder, **changes)
    (folder / "data").symlink_to(ROOT / "data")  # read only: the stages write models/, reports/
    env = {"PYTHONPATH": str(ROOT)}  # this checkout's code, from another folder
    seconds, peak = measure([sys.executable, "-m", "stages.train"], cwd=folder, env=env)
    evaluate_seconds, _ = measure([sys.executable, "-m", "stages.evaluate"], cwd=folder, env=env)
    metrics = json.loads((folder / paths.METRICS_FILE).read_text())
    return seconds, peak, evaluate_seconds, metrics["test"]["accuracy"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000, help="test digits drawn (default 1000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the renderings")
    args = parser.parse_args()
    if not (ROOT / paths.PREPARED_DIR).is_dir() or not (ROOT / paths.RAW_DIR).is_dir():
        sys.exit("model_families: no data/raw/ or data/prepared/; run `dvc repro` first")
    train = yaml.safe_load((ROOT / "params.yaml").read_text())["train"]
    print(
        f"machine: {cpu_model()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"Keras {version('keras')}\ntraining params: {train['optimizer']}, learning rate "
        f"{train['learning_rate']}, {train['epochs']} epochs (unless said), batch size "
        f"{train['batch_size']}, seed {train['seed']}; pictures of the first {args.count} MNIST "
        "test digits, % read as the true digit\n"
    )
    print(
        f"{'model':<20} {'test accuracy':>13} {'train stage':>11} {'peak memory':>11} "
        f"{'evaluate':>8} {'.tflite':>9}",
        end="",
    )
    print("".join(f" {kind:>18}" for kind in KINDS), flush=True)

    digits, labels = mnist_test_digits(args.count)
    with tempfile.TemporaryDirectory(prefix="model_families.") as temporary:
        pictures = {}
        for kind in KINDS:
            (Path(temporary) / kind).mkdir()
            pictures[kind] = render(digits, kind, args.seed, Path(temporary) / kind)
        for label, changes in RUNS.items():
            folder = Path(temporary) / f"run {label}"
            folder.mkdir()
            seconds, peak, evaluate_seconds, accuracy = train_and_test(folder, changes)
            model = folder / paths.SERVING_MODEL_FILE
            read = {kind: read_pictures(files, model) for kind, files in pictures.items()}
            print(
                f"{label:<20} {accuracy:>13.4f} {seconds:>9.1f} s {peak:>7.0f} MiB "
                f"{evaluate_seconds:>6.1f} s {model.stat().st_size / 1024:>5.0f} KiB"
                + "".join(f" {np.mean(read[kind] == labels):>18.1%}" for kind in KINDS),
                flush=True,
            )


if __name__ == "__main__":
    main()
