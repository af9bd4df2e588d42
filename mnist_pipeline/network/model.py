"""The network: build it from params, one kind or another (params.yaml's `model`)."""

import keras

from mnist_pipeline.data.dataset import IMAGE_SHAPE, NUM_CLASSES
from mnist_pipeline.data.preprocessing import INPUT_NAME, INPUT_SIZE
from mnist_pipeline.params import ConvnetParams, DenseParams, ModelParams


def build_model(params: ModelParams) -> keras.Sequential:
    """The network of the kind params name: normalized pixels (784) -> its hidden layers ->
    softmax (10)."""
    # Explicit layer names, here and in the functions below: Keras' automatic ones (dense_2, ...)
    # count the models built so far in the process, which would make a saved model depend on what
    # ran before it.
    if params.kind == "convnet":
        name, hidden = "mnist_convnet", convnet_layers(params.convnet)
    else:
        name, hidden = "mnist_mlp", dense_layers(params.dense)
    return keras.Sequential(
        [
            keras.Input(shape=(INPUT_SIZE,), name=INPUT_NAME),
            *hidden,
            keras.layers.Dense(NUM_CLASSES, activation="softmax", name="digit_probabilities"),
        ],
        name=name,
    )


def dense_layers(params: DenseParams) -> list[keras.layers.Layer]:
    """The tutorial's: Dense(units, activation) per hidden layer."""
    return [
        keras.layers.Dense(units, activation=params.activation, name=f"hidden_{number}")
        for number, units in enumerate(params.hidden_units, 1)
    ]


def convnet_layers(params: ConvnetParams) -> list[keras.layers.Layer]:
    """keras-io's MNIST convnet: the pixels as a 28x28 image, a block of an unpadded convolution
    and a max pooling per entry of filters, the features flattened and dropped out."""
    # Inside the model, so that the prepared data, predict, the web page and the LiteRT export
    # all keep handing it flat pixels.
    layers: list[keras.layers.Layer] = [keras.layers.Reshape((*IMAGE_SHAPE, 1), name="image")]
    for number, filters in enumerate(params.filters, 1):
        layers += [
            keras.layers.Conv2D(
                filters,
                params.kernel_size,
                activation=params.activation,
                name=f"convolution_{number}",
            ),
            keras.layers.MaxPooling2D(params.pool_size, name=f"pooling_{number}"),
        ]
    # Dropout's random choices come from the seed train_model sets before building the model.
    return [
        *layers,
        keras.layers.Flatten(name="flatten"),
        keras.layers.Dropout(params.dropout, name="dropout"),
    ]
