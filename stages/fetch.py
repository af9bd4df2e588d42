"""Stage fetch: write the original MNIST arrays to data/raw/, from the first source that works."""

import argparse

from mnist_pipeline.data.sources import fetch_mnist
from mnist_pipeline.params import FetchParams, load_section
from mnist_pipeline.plumbing import cli, paths
from mnist_pipeline.plumbing.arrays import save_arrays


def main(args: argparse.Namespace) -> None:
    params = load_section(FetchParams)
    arrays = fetch_mnist(params, paths.user_cache_dir())
    save_arrays(paths.RAW_DIR, arrays)


if __name__ == "__main__":
    cli.run(main, argparse.ArgumentParser(prog="fetch", description=__doc__))
