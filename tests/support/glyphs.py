"""A classifier of Pillow's font digits, built without training, for the web server's tests.

It reads the font's digits right, so the tests need neither data nor the pipeline's model.
"""

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from mnist_pipeline.reading.classifiers import load_classifier
from mnist_pipeline.reading.imaging import read_digit
from mnist_pipeline.reading.registry import MODEL_NAME
from mnist_pipeline.web.served import ServedModel


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def drawing(digit: int, size: int, at: tuple[int, int]) -> bytes:
    """A canvas-like PNG: a dark digit on white, 280x280, as the page sends it."""
    canvas = Image.new("RGB", (280, 280), "white")
    font = ImageFont.load_default(size=size)
    ImageDraw.Draw(canvas).text(at, str(digit), fill="black", font=font, anchor="mm")
    return png(canvas)


@pytest.fixture(scope="session")
def glyph_model_file(tmp_path_factory):
    """Dense(10, softmax) whose weights are the ten font digits as read_digit prepares them,
    exported to LiteRT, as the train stage exports the pipeline's model.

    Each output is the cosine of the input with one digit's picture, blurred so that a pixel's
    shift does not matter (times 20, for a clear softmax): the font's digits, drawn at another
    size and place, come out on top.
    """
    import keras

    templates = np.stack(
        [
            Image.fromarray(read_digit(io.BytesIO(drawing(d, 200, (140, 140))), "template"))
            .filter(ImageFilter.GaussianBlur(2.5))
            .getdata()
            for d in range(10)
        ]
    ).astype(np.float32)
    weights = templates / np.linalg.norm(templates, axis=1, keepdims=True)
    model = keras.Sequential([keras.Input(shape=(784,)), keras.layers.Dense(10, "softmax")])
    model.set_weights([20 * weights.T, np.zeros(10, np.float32)])
    path = tmp_path_factory.mktemp("glyphs") / "glyphs.tflite"
    model.export(str(path), format="litert", verbose=False)
    return path


@pytest.fixture(scope="session")
def glyph_model(glyph_model_file):
    """The glyph classifier, read as the server reads its model (classifiers.load_classifier)."""
    return load_classifier(glyph_model_file)


def glyphs(classifier, version: str = "1") -> ServedModel:
    """The classifier as the web server serves a model, labelled `glyphs`."""
    return ServedModel(classifier, label="glyphs", name=MODEL_NAME, version=version, accuracy=None)
