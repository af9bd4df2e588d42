"""The network as built from params: the tutorial's dense one, keras-io's convnet."""

import pytest

from mnist_pipeline.network.model import build_model
from mnist_pipeline.params import (
    ConvnetParams,
    DenseParams,
    ModelParams,
    convnet_parameters,
    dense_parameters,
)


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
