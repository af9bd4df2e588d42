"""Stage preprocess: data/raw/ -> data/prepared/ (flattened pixels, one-hot labels), and the
collection drawings/ -> data/collected/ (its training part, repeated train.drawings times, and its
held-out field set), prepared the same way."""

import argparse

import numpy as np

from mnist_pipeline.data.collection import is_field, load_drawings
from mnist_pipeline.data.dataset import ARRAY_NAMES, check_arrays
from mnist_pipeline.data.preprocessing import prepare, prepare_collected
from mnist_pipeline.params import TrainParams, load_section
from mnist_pipeline.plumbing import cli, paths
from mnist_pipeline.plumbing.arrays import load_arrays, save_array_folders


def main(args: argparse.Namespace) -> None:
    # dvc.yaml lists train.drawings alone: no other train key reruns this stage.
    repeats = load_section(TrainParams).drawings
    raw = load_arrays(paths.RAW_DIR, ARRAY_NAMES)
    check_arrays(raw, verify_checksums=False, origin=str(paths.RAW_DIR))
    drawings = load_drawings(paths.DRAWINGS_DIR)  # all read and checked before anything is written
    held_out = np.array([is_field(name) for name in drawings.names], dtype=bool)
    train, field = prepare_collected(drawings.pixels, drawings.labels, held_out, repeats)
    save_array_folders(
        {paths.PREPARED_DIR: prepare(raw), paths.COLLECTED_TRAIN_DIR: train, paths.FIELD_DIR: field}
    )


if __name__ == "__main__":
    cli.run(main, argparse.ArgumentParser(prog="preprocess", description=__doc__))
