"""The network: build it from params, save it so that its bytes depend only on the model, export
it for serving (LiteRT), and load a saved one with a clear error when the file is not a model."""

import json
import zipfile
from pathlib import Path

import keras
import numpy as np

from mnist_pipeline.data.dataset import IMAGE_SHAPE, NUM_CLASSES
from mnist_pipeline.data.preprocessing import INPUT_NAME, INPUT_SIZE
from mnist_pipeline.params import ConvnetParams, DenseParams, ModelParams
from mnist_pipeline.plumbing.errors import PipelineError
from mnist_pipeline.plumbing.files import MAKE_MODEL_HINT, ZIP_SIGNATURE, check_model_file
from mnist_pipeline.reading.classifiers import LiteRTClassifier

# A zip entry's earliest possible date: the .keras archive then carries no save time.
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
# The LiteRT export must read this many sample images as Keras does, each probability within
# EXPORT_TOLERANCE of Keras' (the two runtimes round float32 sums differently: ~1e-6).
EXPORT_SAMPLE_SIZE = 1000
EXPORT_TOLERANCE = 1e-5


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


def save_model(model: keras.Model, path: Path) -> None:
    """Save as a .keras archive whose bytes depend only on the model.

    Keras stamps the save time into metadata.json and each zip entry (keras-team/keras#15948), and
    numbers shared objects in config.json by their memory address (keras-team/keras#23256). The
    archive is rewritten without dates and with those ids renumbered; load_model reads it as usual.
    """
    model.save(path)
    with zipfile.ZipFile(path) as archive:
        entries = [(info, archive.read(info)) for info in archive.infolist()]
    with zipfile.ZipFile(path, "w") as archive:
        for info, data in entries:
            if info.filename == "metadata.json":
                metadata = json.loads(data)
                metadata.pop("date_saved", None)
                data = json.dumps(metadata).encode()
            elif info.filename == "config.json":
                data = json.dumps(renumber_shared_objects(json.loads(data), {})).encode()
            entry = zipfile.ZipInfo(info.filename, date_time=ZIP_EPOCH)
            entry.compress_type = info.compress_type
            entry.external_attr = 0o644 << 16
            archive.writestr(entry, data)


def renumber_shared_objects(config: object, numbers: dict[int, int]) -> object:
    """Replace each `shared_object_id` with 1, 2, ... in order of first appearance."""
    if isinstance(config, list):
        return [renumber_shared_objects(item, numbers) for item in config]
    if isinstance(config, dict):
        return {
            key: numbers.setdefault(value, len(numbers) + 1)
            if key == "shared_object_id"
            else renumber_shared_objects(value, numbers)
            for key, value in config.items()
        }
    return config


def export_for_serving(model: keras.Model, path: Path, sample: np.ndarray) -> None:
    """Write the model as a LiteRT flatbuffer (`.tflite`, Keras' own export) and check it."""
    model.export(str(path), format="litert", verbose=False)
    check_export(model, path, sample)


def check_export(model: keras.Model, path: Path, sample: np.ndarray) -> None:
    """Raise PipelineError unless the LiteRT model in `path` reads up to EXPORT_SAMPLE_SIZE of
    the `sample` pixels (N, 784) as `model` does: same digits, probabilities within tolerance."""
    images = sample[:: max(1, len(sample) // EXPORT_SAMPLE_SIZE)][:EXPORT_SAMPLE_SIZE]
    expected = np.asarray(model(images, training=False))
    exported = LiteRTClassifier(path)(images)
    misread = int(np.sum(exported.argmax(axis=1) != expected.argmax(axis=1)))
    difference = float(np.max(np.abs(exported - expected)))
    if misread or difference > EXPORT_TOLERANCE:
        raise PipelineError(
            f"{path}: the LiteRT export disagrees with the Keras model on {len(images)} training "
            f"images ({misread} read as another digit; probabilities up to {difference:.1e} apart, "
            f"tolerance {EXPORT_TOLERANCE:.0e})"
        )


def load_model(path: Path, hint: str = MAKE_MODEL_HINT) -> keras.Model:
    """Load a .keras archive; a missing, damaged or foreign file is one PipelineError line."""
    check_model_file(path, hint)
    problem = archive_problem(path)
    if problem:
        raise PipelineError(f"{path}: {problem}; {hint}")
    try:
        return keras.models.load_model(path)
    # A zip that is no Keras archive fails in several ways, depending on what it lacks.
    except (ValueError, OSError, KeyError, TypeError, zipfile.BadZipFile) as error:
        raise PipelineError(f"{path}: not a loadable Keras model ({error})") from None


def archive_problem(path: Path) -> str | None:
    """What makes `path` no .keras archive, read from the zip alone; None if it looks like one."""
    if not zipfile.is_zipfile(path):
        with path.open("rb") as file:
            starts_as_zip = file.read(len(ZIP_SIGNATURE)) == ZIP_SIGNATURE
        if starts_as_zip:
            return "damaged: a zip archive cut short or corrupted, not a whole Keras model"
        return "not a Keras model (a .keras file is a zip archive, this is none)"
    try:
        with zipfile.ZipFile(path) as archive:
            corrupt = archive.testzip()
            names = set(archive.namelist())
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        return f"damaged: {error}"
    if corrupt:
        return f"damaged: its member {corrupt} is corrupt"
    if not {"config.json", "metadata.json"} <= names:
        return "not a Keras model (a zip archive without config.json and metadata.json)"
    return None
