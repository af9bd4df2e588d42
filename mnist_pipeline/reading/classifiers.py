"""Read digits with a trained model: load it once, classify prepared pixels, name the top two.

Everything that only reads the network (the evaluate stage, `predict`, the web page) goes through
`load_classifier`, given a file that is there: checked once, where its reference was resolved
(registry.resolve, the evaluate stage), not again here. The train stage's LiteRT export
(`.tflite`) is read by LiteRT's interpreter, without TensorFlow; a Keras archive (`.keras`) is read
through Keras, which imports TensorFlow.
"""

import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from mnist_pipeline.data.dataset import NUM_CLASSES
from mnist_pipeline.data.preprocessing import INPUT_SIZE, normalize_pixels
from mnist_pipeline.plumbing.errors import ModelFileError, PipelineError
from mnist_pipeline.plumbing.files import ZIP_SIGNATURE
from mnist_pipeline.plumbing.imports import importing_tensorflow

log = logging.getLogger(__name__)

# Normalized pixels, float32 (N, 784) -> digit probabilities, float32 (N, 10).
Classifier = Callable[[np.ndarray], np.ndarray]

# A reading whose digit is less probable than this is flagged "not sure this is a digit" (predict,
# the page): a scribble or a letter still gets the digit it looks most like. Chosen from data
# (`python tools/unsure_threshold.py`, docs/collecting.md): on the starter collection 0.8 flags as
# many misreads as any higher value (7 of 8) and fewer right readings (9 of 242 against 14 at
# 0.9); on MNIST's test set it flags 149 of 241 misreads and 164 of 9,759 right readings.
UNSURE_BELOW = 0.8

KERAS_SUFFIX = ".keras"
# Bytes 4-8 of a LiteRT (TensorFlow Lite) flatbuffer: its file identifier.
LITERT_IDENTIFIER = b"TFL3"


@dataclass(frozen=True)
class Reading:
    """What a model made of one digit: the most probable digit and the runner-up, and whether
    the model is too unsure for the digit to be trusted (UNSURE_BELOW)."""

    digit: int
    probability: float
    runner_up: int
    runner_up_probability: float
    unsure: bool

    def as_dict(self) -> dict[str, int | float | bool]:
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
        unsure=bool(probabilities[first] < UNSURE_BELOW),
    )


def classify(classifier: Classifier, digits: Sequence[np.ndarray]) -> np.ndarray:
    """uint8 (28, 28) digits -> (N, 10) probabilities, through the pipeline's one normalization."""
    return classifier(normalize_pixels(np.stack(digits)))


def load_classifier(path: Path) -> Classifier:
    """The model in `path` as a Classifier, once checked to be a digit classifier: a `.keras`
    archive through Keras, anything else as a LiteRT model. A file that is no model of its kind
    is a ModelFileError."""
    if path.suffix == KERAS_SUFFIX:
        return keras_classifier(path)
    return LiteRTClassifier(path)


class LiteRTClassifier:
    """A LiteRT model run by LiteRT's interpreter: no TensorFlow in the process.

    Not safe to call from several threads at once (the interpreter holds its tensors).
    """

    def __init__(self, path: Path) -> None:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        try:
            # LiteRT's built-in kernels without its default XNNPACK delegate, which prints an
            # INFO line on every start that no Python setting silences (tensorflow/tensorflow
            # #58050, google-ai-edge/mediapipe#3672); docs/performance.md says what it costs.
            self.interpreter = Interpreter(
                model_path=str(path),
                experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
            )
        except ValueError:  # LiteRT's verifier refused the file
            raise ModelFileError(path, litert_problem(path)) from None
        inputs = self.interpreter.get_input_details()
        outputs = self.interpreter.get_output_details()
        check_digit_classifier(
            path,
            [(detail["shape_signature"], detail["dtype"]) for detail in inputs],
            [(detail["shape_signature"], detail["dtype"]) for detail in outputs],
        )
        self.input_index, self.output_index = inputs[0]["index"], outputs[0]["index"]
        self.batch_size = 0  # no tensors allocated yet

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        if len(pixels) != self.batch_size:  # tensors are sized for one batch size at a time
            self.interpreter.resize_tensor_input(self.input_index, pixels.shape, strict=True)
            self.interpreter.allocate_tensors()
            self.batch_size = len(pixels)
        self.interpreter.set_tensor(self.input_index, pixels)
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self.output_index)


def litert_problem(path: Path) -> str:
    """Why LiteRT refused `path`, from its first bytes."""
    with path.open("rb") as file:
        head = file.read(8)
    if head.startswith(ZIP_SIGNATURE):
        return "a zip archive, not a LiteRT model (a Keras model is read as one if named *.keras)"
    if head[4:8] == LITERT_IDENTIFIER:
        return "damaged: a LiteRT model cut short or corrupted"
    return "not a LiteRT model (no TFL3 flatbuffer)"


def keras_classifier(path: Path) -> Classifier:
    """A .keras archive read through Keras: TensorFlow's import takes seconds."""
    log.debug("%s: a Keras model, read through Keras and TensorFlow (a .tflite loads faster)", path)
    with importing_tensorflow():
        from mnist_pipeline.network.archive import load_model

    model = load_model(path)
    check_digit_classifier(
        path,
        [(tensor.shape, tensor.dtype) for tensor in model.inputs],
        [(tensor.shape, tensor.dtype) for tensor in model.outputs],
    )
    # Called directly: for a few digits, `model.predict`'s per-call set-up costs far more than
    # the network itself.
    return lambda pixels: np.asarray(model(pixels, training=False))


def check_digit_classifier(path: Path, takes: Sequence[tuple], gives: Sequence[tuple]) -> None:
    """Refuse a model unless it takes one batch of 784 float32 pixels and gives one batch of 10
    float32 probabilities. `takes` and `gives`: (shape, dtype) of each input and output."""

    def described(tensors: Sequence[tuple]) -> list[tuple[tuple[int, ...], str]]:
        return [(tuple(shape)[1:], np.dtype(dtype).name) for shape, dtype in tensors]

    def listed(tensors: list[tuple[tuple[int, ...], str]]) -> str:
        return " and ".join(f"({', '.join(map(str, s))}) {d}" for s, d in tensors) or "nothing"

    takes, gives = described(takes), described(gives)
    if (takes, gives) != ([((INPUT_SIZE,), "float32")], [((NUM_CLASSES,), "float32")]):
        raise PipelineError(
            f"{path}: not a digit classifier (takes {listed(takes)}, gives {listed(gives)} per "
            f"image; expected {INPUT_SIZE} float32 pixels -> {NUM_CLASSES} float32 digit "
            "probabilities)"
        )
