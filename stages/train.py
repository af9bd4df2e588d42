"""Stage train: fit the network on data/prepared/ and save the model and its per-epoch history."""

import argparse

from mnist_pipeline import cli, paths
from mnist_pipeline.files import atomic_files, load_arrays
from mnist_pipeline.params import ModelParams, TrainParams, load_section
from mnist_pipeline.preprocessing import check_prepared


def main(args: argparse.Namespace) -> None:
    model_params, train_params = load_section(ModelParams), load_section(TrainParams)
    data = load_arrays(paths.PREPARED_DIR, ("x_train", "y_train"), aligned=True)
    check_prepared(data["x_train"], data["y_train"], origin=str(paths.PREPARED_DIR))
    train_params.check_split(len(data["x_train"]))
    # TensorFlow takes seconds to import: bad params and data are reported before that.
    with cli.importing_tensorflow():
        from mnist_pipeline.training import save_history, save_model, train_model

    model, history = train_model(data["x_train"], data["y_train"], model_params, train_params)
    # The model and its history as a set: a failure midway leaves the old ones, all of them.
    with atomic_files(
        paths.MODEL_FILE, paths.TRAIN_HISTORY_FILE, paths.VALIDATION_HISTORY_FILE
    ) as (model_file, train_file, validation_file):
        save_model(model, model_file)
        save_history(history, train_file, validation_file)


if __name__ == "__main__":
    cli.run(main, argparse.ArgumentParser(prog="train", description=__doc__), skip_teardown=True)
