"""The train stage's LiteRT export for serving, checked by reading it back as a reader does: above
both the network (Keras' export) and the reader (reading.classifiers), so neither imports the
other."""

from pathlib import Path

import keras
import numpy as np

from mnist_pipeline.plumbing.errors import PipelineError
from mnist_pipeline.reading.classifiers import LiteRTClassifier

# The LiteRT export must read this many sample images as Keras does, each probability within
# EXPORT_TOLERANCE of Keras' (the two runtimes round float32 sums differently: ~1e-6).
EXPORT_SAMPLE_SIZE = 1000
EXPORT_TOLERANCE = 1e-5


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
