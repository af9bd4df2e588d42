import math
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mnist_pipeline.errors import PipelineError
from mnist_pipeline.params import (
    SECTIONS,
    FetchParams,
    ModelParams,
    TrainParams,
    load_section,
    parse_section,
)

ROOT = Path(__file__).resolve().parent.parent


def test_committed_params_list_every_key_with_its_declared_default_the_tutorials():
    document = yaml.safe_load((ROOT / "params.yaml").read_text())
    assert set(document) == set(SECTIONS)
    for name, section in SECTIONS.items():
        assert parse_section(section, document) == section()
        assert set(document[name]) == set(section.model_fields), name
    # The Keras tutorial's choices: Dense(512, relu), rmsprop, 5 epochs of 128, no validation.
    model, train = parse_section(ModelParams, document), parse_section(TrainParams, document)
    assert (model.hidden_units, model.activation) == ([512], "relu")
    assert (train.optimizer, train.learning_rate, train.epochs, train.batch_size) == (
        "rmsprop", 0.001, 5, 128,
    )  # fmt: skip
    assert train.validation_split == 0


@pytest.mark.parametrize(
    ("section", "values", "message"),
    [
        (TrainParams, {"epochs": -1}, "params.yaml: train.epochs must be greater than 0, got -1"),
        (TrainParams, {"epochs": "5"}, "params.yaml: train.epochs must be an integer, got '5'"),
        (TrainParams, {"epochs": 2.5}, "params.yaml: train.epochs must be an integer, got 2.5"),
        (TrainParams, {"batch_size": True}, "train.batch_size must be an integer, got True"),
        (TrainParams, {"learning_rate": "fast"}, "train.learning_rate must be a number"),
        (TrainParams, {"validation_split": 1.0}, "train.validation_split must be less than 1"),
        (TrainParams, {"epoch": 3}, "train.epoch is not a known parameter (known keys of train: "),
        (TrainParams, {"optimizer": "adagrad"}, "train.optimizer must be 'rmsprop', 'adam'"),
        (ModelParams, {"hidden_units": []}, "model.hidden_units must not be empty, got []"),
        (ModelParams, {"hidden_units": 512}, "model.hidden_units must be a list, got 512"),
        (ModelParams, {"hidden_units": [64, 0]}, "model.hidden_units[1] must be greater than 0"),
        (ModelParams, {"activation": "relux"}, "model.activation must be 'relu', 'gelu'"),
        (FetchParams, {"sources": ["pypi", "pypi"]}, "fetch.sources must list each source at most"),
        (FetchParams, {"sources": ["ftp"]}, "fetch.sources[0] must be 'keras', 'pypi' or 'local'"),
        (FetchParams, {"verify_checksums": "no"}, "fetch.verify_checksums must be true or false"),
        (FetchParams, {"local_path": ""}, "fetch.local_path must not be empty, got ''"),
        (
            TrainParams,
            {"learning_rate": math.nan},
            "learning_rate must be a finite number, got nan",
        ),
        (
            TrainParams,
            {"learning_rate": math.inf},
            "learning_rate must be a finite number, got inf",
        ),
        (FetchParams, {"connect_timeout": math.nan}, "connect_timeout must be a finite number"),
    ],
)
def test_bad_values_name_the_key_and_what_is_allowed(section, values, message):
    name = section.name
    with pytest.raises(PipelineError) as error:
        parse_section(section, {name: values})
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def write(tmp_path, text):
    path = tmp_path / "params.yaml"
    path.write_text(text)
    return path


def test_missing_section_file_and_malformed_yaml(tmp_path):
    with pytest.raises(PipelineError, match="section `train` is missing"):
        load_section(TrainParams, write(tmp_path, "model: {}\n"))
    with pytest.raises(PipelineError, match="train must be a mapping of keys, got 5"):
        load_section(TrainParams, write(tmp_path, "train: 5\n"))
    with pytest.raises(PipelineError, match=r"params.yaml: malformed YAML at line 3"):
        load_section(TrainParams, write(tmp_path, "train:\n  epochs: [1,\n"))
    with pytest.raises(PipelineError, match="params.yaml: not found"):
        load_section(TrainParams, tmp_path / "absent" / "params.yaml")


def test_numbers_read_as_dvc_writes_them(tmp_path):
    # `dvc exp run -S train.learning_rate=1e-5` writes `1e-05`: YAML 1.2 reads a number.
    assert (
        load_section(TrainParams, write(tmp_path, "train: {learning_rate: 1e-05}\n")).learning_rate
        == 1e-5
    )
    assert (
        load_section(TrainParams, write(tmp_path, "train: {learning_rate: 1e-3}\n")).learning_rate
        == 1e-3
    )


def test_duplicate_keys_and_non_utf8_files_are_reported(tmp_path):
    with pytest.raises(PipelineError, match="params.yaml: malformed YAML at line 3"):
        load_section(TrainParams, write(tmp_path, "train:\n  epochs: 1\n  epochs: 2\n"))
    (tmp_path / "params.yaml").write_bytes(b"train: {optimizer: \xff}\n")
    with pytest.raises(PipelineError, match="params.yaml: not UTF-8 text"):
        load_section(TrainParams, tmp_path / "params.yaml")


def test_nan_as_yaml_writes_it_is_not_a_learning_rate(tmp_path):
    with pytest.raises(PipelineError, match="train.learning_rate must be a finite number, got nan"):
        load_section(TrainParams, write(tmp_path, "train: {learning_rate: .nan}\n"))


@pytest.mark.parametrize(
    ("split", "images", "message"),
    [
        (0.99999, 60000, "leaves no image to train on (60000 training images)"),
        (0.5, 1, "leaves no image to train on (1 training images)"),
        (1e-17, 100, "leaves no image to validate on (100 training images)"),
    ],
)
def test_a_split_that_leaves_nothing_to_train_or_validate_is_refused(split, images, message):
    with pytest.raises(
        PipelineError, match=rf"train.validation_split {split} {re.escape(message)}"
    ):
        TrainParams(validation_split=split).check_split(images)


@pytest.mark.parametrize(("split", "images"), [(0.0, 1), (0.0, 60000), (0.5, 2), (0.9999, 60000)])
def test_a_split_that_leaves_both_parts_is_accepted(split, images):
    TrainParams(validation_split=split).check_split(images)


def test_a_missing_key_takes_its_default(tmp_path):
    assert load_section(TrainParams, write(tmp_path, "train: {epochs: 2}\n")).batch_size == 128


@pytest.mark.parametrize("stage", ["fetch", "train"])
def test_stage_with_a_bad_param_prints_one_line_and_writes_nothing(tmp_path, stage):
    document = yaml.safe_load((ROOT / "params.yaml").read_text())
    document["fetch"]["retries"] = -3
    document["model"]["hidden_units"] = []
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(document))
    result = subprocess.run(
        [sys.executable, "-m", f"stages.{stage}"],
        cwd=tmp_path,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    expected = {
        "fetch": "fetch: error: params.yaml: fetch.retries must be greater than or equal to 0,"
        " got -3",
        "train": "train: error: params.yaml: model.hidden_units must not be empty, got []",
    }[stage]
    assert result.stderr.strip().splitlines() == [expected]
    assert "Traceback" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"]
