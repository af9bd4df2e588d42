"""The network as built from params, saved reproducibly and loaded back, or refused clearly."""

import zipfile

import numpy as np
import pytest

from mnist_pipeline.network.model import (
    EXPORT_TOLERANCE,
    build_model,
    check_export,
    export_for_serving,
    load_model,
    save_model,
)
from mnist_pipeline.params import (
    ConvnetParams,
    DenseParams,
    ModelParams,
    convnet_parameters,
    dense_parameters,
)
from mnist_pipeline.plumbing.errors import PipelineError

HINT = "run `dvc repro` to make it"


def test_default_network_is_the_tutorials():
    model = build_model(ModelParams())
    assert model.name == "mnist_mlp"
    assert model.count_params() == 407_050  # 784*512 + 512 + 512*10 + 10
    assert [layer.name for layer in model.layers] == ["hidden_1", "digit_probabilities"]
    assert [layer.units for layer in model.layers] == [512, 10]
    assert model.layers[0].activation.__name__ == "relu"
    assert model.layers[-1].activation.__name__ == "softmax"
    # It takes the normalized pixels as they are: no rescaling inside.
    assert model.input_shape == (None, 784) and model.inputs[0].dtype == "float32"


def test_hidden_units_set_the_depth_and_width():
    model = build_model(ModelParams(dense=DenseParams(hidden_units=[256, 128], activation="tanh")))
    assert model.count_params() == (784 * 256 + 256) + (256 * 128 + 128) + (128 * 10 + 10)
    assert model.layers[0].activation.__name__ == "tanh"


def test_the_convnet_is_keras_ios():
    model = build_model(ModelParams(kind="convnet"))
    assert model.name == "mnist_convnet"
    assert (
        model.count_params() == 34_826
    )  # (9 + 1) * 32 + (9 * 32 + 1) * 64 + (5 * 5 * 64 + 1) * 10
    assert [layer.name for layer in model.layers] == [
        "image", "convolution_1", "pooling_1", "convolution_2", "pooling_2", "flatten", "dropout",
        "digit_probabilities",
    ]  # fmt: skip
    # It takes the flat pixels the pipeline prepares and makes them the image they were.
    assert model.input_shape == (None, 784)
    assert model.get_layer("image").output.shape == (None, 28, 28, 1)
    assert model.get_layer("flatten").output.shape == (None, 5 * 5 * 64)
    convolution = model.get_layer("convolution_1")
    assert (convolution.kernel_size, convolution.padding) == ((3, 3), "valid")
    assert convolution.activation.__name__ == "relu"
    assert model.get_layer("pooling_2").pool_size == (2, 2)
    assert model.get_layer("dropout").rate == 0.5
    assert model.layers[-1].activation.__name__ == "softmax"


def test_convnet_params_set_its_blocks():
    params = ConvnetParams(filters=[8], kernel_size=5, pool_size=3, dropout=0.25, activation="tanh")
    model = build_model(ModelParams(kind="convnet", convnet=params))
    # 28x28 convolved to 24x24, pooled to 8x8, with 8 filters: 512 features for the softmax.
    assert model.count_params() == (5 * 5 + 1) * 8 + (8 * 8 * 8 + 1) * 10
    assert model.get_layer("convolution_1").activation.__name__ == "tanh"
    assert model.get_layer("dropout").rate == 0.25


@pytest.mark.parametrize(
    "params",
    [
        ModelParams(),
        ModelParams(dense=DenseParams(hidden_units=[3, 700, 1])),
        ModelParams(kind="convnet"),
        ModelParams(kind="convnet", convnet=ConvnetParams(filters=[5, 3], kernel_size=4)),
        ModelParams(kind="convnet", convnet=ConvnetParams(filters=[2, 7], pool_size=1)),
    ],
)
def test_params_count_the_parameters_as_keras_does(params):
    # params.py counts them to refuse a network too large before TensorFlow loads.
    counted = (
        convnet_parameters(
            params.convnet.filters, params.convnet.kernel_size, params.convnet.pool_size
        )
        if params.kind == "convnet"
        else dense_parameters(params.dense.hidden_units)
    )
    assert counted == build_model(params).count_params()


@pytest.mark.parametrize(
    ("filters", "kernel_size", "pool_size", "features"),
    [
        ([4, 4, 4], 3, 2, 1 * 1 * 4),  # the most blocks of keras-io's sizes that fit
        ([4], 28, 1, 1 * 1 * 4),  # the largest kernel
        ([4], 1, 28, 1 * 1 * 4),  # the largest pooling
        ([4, 4, 4, 4, 4, 4], 1, 1, 28 * 28 * 4),  # nothing shrinks
    ],
)
def test_convnets_at_the_edge_of_what_the_image_allows_build(
    filters, kernel_size, pool_size, features
):
    params = ConvnetParams(filters=filters, kernel_size=kernel_size, pool_size=pool_size)
    model = build_model(ModelParams(kind="convnet", convnet=params))
    assert model.get_layer("flatten").output.shape == (None, features)
    assert model.output_shape == (None, 10)


@pytest.mark.parametrize(
    ("filters", "kernel_size", "pool_size"),
    [([4, 4, 4, 4], 3, 2), ([4], 28, 2), ([4, 4], 1, 28)],  # one block past each edge above
)
def test_keras_refuses_the_convnets_params_refuse(filters, kernel_size, pool_size):
    # model_construct skips the validation: what params.py refuses up front, Keras would too.
    params = ConvnetParams.model_construct(
        filters=filters,
        kernel_size=kernel_size,
        pool_size=pool_size,
        dropout=0.5,
        activation="relu",
    )
    with pytest.raises(ValueError, match="Computed output size would be zero or negative"):
        build_model(ModelParams(kind="convnet", convnet=params))


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "model.keras"
    model = build_model(ModelParams(dense=DenseParams(hidden_units=[4])))
    model.compile(optimizer="rmsprop", loss="categorical_crossentropy")
    model.optimizer.build(model.trainable_variables)  # its state is saved too
    save_model(model, path)
    return path


def test_the_archive_has_no_dates_and_loads(saved):
    with zipfile.ZipFile(saved) as archive:
        assert {info.date_time for info in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}
        assert b"date_saved" not in archive.read("metadata.json")
    assert load_model(saved).count_params() == 784 * 4 + 4 + 4 * 10 + 10


def write_zip(path, members):
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda path, model: None, f"no trained model; {HINT}"),
        (
            lambda path, model: path.write_bytes(model.read_bytes()[:5000]),
            "damaged: a zip archive cut short or corrupted, not a whole Keras model",
        ),
        (
            lambda path, model: path.write_bytes(bytes(range(256)) * 40),
            "not a Keras model (a .keras file is a zip archive, this is none)",
        ),
        (
            lambda path, model: write_zip(path, {"notes.txt": "a zip, but not a model"}),
            "not a Keras model (a zip archive without config.json and metadata.json)",
        ),
        (
            lambda path, model: write_zip(
                path, {"config.json": "{not json", "metadata.json": "{}", "model.weights.h5": ""}
            ),
            "not a loadable Keras model",
        ),
    ],
    ids=["missing", "truncated", "random-bytes", "other-zip", "broken-config"],
)
def test_a_file_that_is_no_model_is_one_line_saying_what_is_wrong(saved, tmp_path, make, message):
    path = tmp_path / "model.keras"
    make(path, saved)
    with pytest.raises(PipelineError) as error:
        load_model(path)
    line = str(error.value)
    assert line.startswith(f"{path}: ") and message in line and "\n" not in line


@pytest.fixture(scope="module")
def exported(tmp_path_factory, tiny_mnist):
    import keras

    from mnist_pipeline.data.preprocessing import prepare

    folder = tmp_path_factory.mktemp("exported")
    # Seeded, or its weights depend on the models built before it. An untrained network's top
    # two probabilities can be near ties, which the shifts below would tip: with this seed every
    # image's top two are over 9e-4 apart in log-probability, the largest shift 9 x 3e-5.
    keras.utils.set_random_seed(31)
    model = build_model(ModelParams(dense=DenseParams(hidden_units=[8])))
    pixels = prepare(tiny_mnist)["x_train"]
    export_for_serving(model, folder / "model.tflite", pixels)
    return folder / "model.tflite", model, pixels


def test_the_export_is_the_same_bytes_each_time(exported, tmp_path):
    path, model, pixels = exported
    export_for_serving(model, tmp_path / "again.tflite", pixels)
    assert (tmp_path / "again.tflite").read_bytes() == path.read_bytes()


def shifted(model, by: float):
    """A copy of `model` whose output layer's biases are all moved by `by`: the same digits,
    probabilities moved a little, as a different export of the model would."""
    import keras

    copy = keras.models.clone_model(model)
    weights = model.get_weights()
    weights[-1] = weights[-1] + np.float32(by) * np.arange(10, dtype=np.float32)
    copy.set_weights(weights)
    return copy


@pytest.mark.parametrize(("by", "agrees"), [(0.0, True), (1e-6, True), (3e-5, False)])
def test_an_export_that_disagrees_beyond_the_tolerance_is_refused(exported, by, agrees):
    path, model, pixels = exported
    other = shifted(model, by)
    difference = np.abs(np.asarray(other(pixels)) - np.asarray(model(pixels))).max()
    assert (difference <= EXPORT_TOLERANCE) == agrees  # each side of the bound
    if agrees:
        check_export(other, path, pixels)
    else:
        with pytest.raises(PipelineError) as error:
            check_export(other, path, pixels)
        assert str(error.value).startswith(
            f"{path}: the LiteRT export disagrees with the Keras model on 300 training images "
            "(0 read as another digit; probabilities up to"
        )


def test_an_export_that_reads_another_digit_is_refused(exported):
    path, model, pixels = exported
    with pytest.raises(PipelineError, match=r"on 300 training images \([1-9]\d* read as another"):
        check_export(build_model(ModelParams(dense=DenseParams(hidden_units=[8]))), path, pixels)


def test_an_export_written_wrong_is_refused_by_the_export_itself(exported, tmp_path, monkeypatch):
    path, model, pixels = exported
    other = shifted(model, 3e-5)  # the same digits, probabilities beyond the tolerance
    # As if Keras' converter went wrong: the flatbuffer written for `other` is `model`'s.
    monkeypatch.setattr(other, "export", lambda target, **options: model.export(target, **options))
    with pytest.raises(PipelineError, match=r"the LiteRT export disagrees with the Keras model"):
        export_for_serving(other, tmp_path / "model.tflite", pixels)
