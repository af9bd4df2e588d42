"""Stage preprocess: data/raw/ -> data/prepared/ (flattened pixels, one-hot labels)."""

import argparse

from mnist_pipeline.data.dataset import ARRAY_NAMES, check_arrays
from mnist_pipeline.data.preprocessing import prepare
from mnist_pipeline.plumbing import cli, paths
from mnist_pipeline.plumbing.arrays import load_arrays, save_arrays


def main(args: argparse.Namespace) -> None:
    raw = load_arrays(paths.RAW_DIR, ARRAY_NAMES)
    check_arrays(raw, verify_checksums=False, origin=str(paths.RAW_DIR))
    save_arrays(paths.PREPARED_DIR, prepare(raw))


if __name__ == "__main__":
    cli.run(main, argparse.ArgumentParser(prog="preprocess", description=__doc__))
