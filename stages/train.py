"""Stage train: fit the network on data/prepared/ (and the collection's training part,
data/collected/train/, when train.drawings asks for it); save the model, its LiteRT export for
serving, and its per-epoch history."""

import argparse

from mnist_pipeline.data.preprocessing import (
    COLLECTED_NAMES,
    check_prepared,
    join_before_validation,
)
from mnist_pipeline.params import ModelParams, TrainParams, load_section
from mnist_pipeline.plumbing import cli, imports, paths
from mnist_pipeline.plumbing.arrays import load_arrays
from mnist_pipeline.plumbing.files import atomic_files
from mnist_pipeline.training import kernels, speedups


def main(args: argparse.Namespace) -> None:
    model_params, train_params = load_section(ModelParams), load_section(TrainParams)
    data = speedups.load_aligned_arrays(paths.PREPARED_DIR, ("x_train", "y_train"))
    check_prepared(data["x_train"], data["y_train"], origin=str(paths.PREPARED_DIR))
    drawn = load_arrays(paths.COLLECTED_TRAIN_DIR, COLLECTED_NAMES)
    if len(drawn["x"]):  # none while train.drawings is 0: MNIST's arrays alone, as they were
        check_prepared(drawn["x"], drawn["y"], origin=str(paths.COLLECTED_TRAIN_DIR))
    x, y = join_before_validation(
        data["x_train"], data["y_train"], drawn["x"], drawn["y"], train_params.validation_split
    )
    train_params.check_split(len(x))
    # Before TensorFlow loads, which reads its kernel path and thread count once.
    kernels.pin(train_params.threads, train_params.instruction_set)
    # TensorFlow takes seconds to import: bad params and data are reported before that.
    with imports.importing_tensorflow(), speedups.keras_without_pandas():
        from mnist_pipeline.network.archive import save_model
        from mnist_pipeline.training.export import export_for_serving
        from mnist_pipeline.training.fit import save_history, train_model

    model, history = train_model(x, y, model_params, train_params)
    # The model, its export and its history as a set: a failure midway leaves the old ones, all.
    with atomic_files(
        paths.MODEL_FILE,
        paths.SERVING_MODEL_FILE,
        paths.TRAIN_HISTORY_FILE,
        paths.VALIDATION_HISTORY_FILE,
    ) as (model_file, serving_file, train_file, validation_file):
        save_model(model, model_file)
        export_for_serving(model, serving_file, x)
        save_history(history, train_file, validation_file)


if __name__ == "__main__":
    cli.run(main, argparse.ArgumentParser(prog="train", description=__doc__), skip_teardown=True)
