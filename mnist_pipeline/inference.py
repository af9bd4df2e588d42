"""Read digits with a trained model: load it once, classify prepared pixels, name the top two.

Everything that only reads the network (the evaluate stage, `predict`, the web page) goes
through `load_classifier`, which checks that the model maps 784 pixels to 10 digit probabilities.
"""

import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from mnist_pipeline.dataset import NUM_CLASSES
from mnist_pipeline.errors import PipelineError
from mnist_pipeline.preprocessing import INPUT_SIZE, normalize_pixels

log = logging.getLogger(__name__)

# Normalized pixels, float32 (N, 784) -> digit probabilities, float32 (N, 10).
Classifier = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Reading:
    """What a model made of one digit: the most probable digit and the runner-up."""

    digit: int
    probability: float
    runner_up: int
    runner_up_probability: float

    def as_dict(self) -> dict[str, int | float]:
        """The reading as JSON numbers, probabilities to six places."""
        return {
            key: round(value, 6) if isinstance(value, float) else value
            for key, value in asdict(self).items()
        }


def top_two(probabilities: np.ndarray) -> Reading:
    """The most and second most probable digits of one row of probabilities."""
    first, second = np.argsort(-probabilities, kind="stable")[:2]
    return Reading(
        digit=int(first),
        probability=float(probabilities[first]),
        runner_up=int(second),
        runner_up_probability=float(probabilities[second]),
    )


def classify(classifier: Classifier, digits: Sequence[np.ndarray]) -> np.ndarray:
    """uint8 (28, 28) digits -> (N, 10) probabilities, through the pipeline's one normalization."""
    return classifier(normalize_pixels(np.stack(digits)))


def load_classifier(path: Path) -> Classifier:
    """The model in `path` as a Classifier, once checked to be a digit classifier."""
    from mnist_pipeline.speedups import importing_tensorflow

    with importing_tensorflow():  # seconds: only when a Keras model is asked for
        from mnist_pipeline.model import load_model

    model = load_model(path)
    check_digit_classifier(path, model.input_shape, model.output_shape)
    # Called directly: for a few digits, `model.predict`'s per-call set-up costs far more than
    # the network itself.
    return lambda pixels: np.asarray(model(pixels, training=False))


def check_digit_classifier(path: Path, takes: Sequence, gives: Sequence) -> None:
    """Refuse a model whose input is not 784 pixels or whose output is not 10 probabilities."""
    if (tuple(takes)[1:], tuple(gives)[1:]) != ((INPUT_SIZE,), (NUM_CLASSES,)):
        raise PipelineError(
            f"{path}: not a digit classifier (takes {tuple(takes)}, gives {tuple(gives)}; "
            f"expected {INPUT_SIZE} pixels -> {NUM_CLASSES} digit probabilities)"
        )
