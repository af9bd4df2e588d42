"""A model the web server answers with: its classifier, and what the page and API say of it."""

import re
from dataclasses import dataclass, field

from mnist_pipeline.reading import registry
from mnist_pipeline.reading.classifiers import Classifier, load_classifier
from mnist_pipeline.reading.registry import ModelSource

# A registry version as TensorFlow Serving's version number takes it: each part under 1,000.
SEMVER = re.compile(r"v?(\d{1,3})\.(\d{1,3})\.(\d{1,3})")


@dataclass(frozen=True)
class ServedModel:
    classifier: Classifier
    label: str  # which model it is, for people: `mnist-mlp#prod (v1.0.0, revision ..., md5 ...)`
    # TensorFlow Serving's address of it: /v1/models/<name>[/versions/<version>]
    name: str
    version: str
    accuracy: float | None  # its committed test accuracy, where known
    source: dict[str, str | None] = field(default_factory=dict)  # ModelSource.as_dict()

    def describe(self) -> dict[str, object]:
        """The model as the API names it in every reading: its source (reference, revision, md5,
        registry version) and how it is served (`version`: TensorFlow Serving's number)."""
        return {
            **self.source,
            "label": self.label,
            "name": self.name,
            "version": self.version,
            "accuracy": self.accuracy,
        }


def serving_version(source: ModelSource) -> str:
    """TensorFlow Serving's version of a model, a whole number as its paths take one: the
    registry's vMAJOR.MINOR.PATCH as MAJOR * 1,000,000 + MINOR * 1,000 + PATCH, so that a later
    version is a larger number (v1.0.0 is 1000000); else, and for a part over 999, the first 8
    hex digits of the model's md5 read as a number (b1d4628d is 2983486093)."""
    if source.version and (parts := SEMVER.fullmatch(source.version)):
        major, minor, patch = map(int, parts.groups())
        return str(major * 1_000_000 + minor * 1_000 + patch)
    return str(int(source.md5[:8], 16))


def serve(source: ModelSource) -> ServedModel:
    """Load the model `source` names, for the server, under its serving_version."""
    version = serving_version(source)
    return ServedModel(
        classifier=load_classifier(registry.local_file(source)),
        label=source.label(served_as=version),
        name=registry.MODEL_NAME,
        version=version,
        accuracy=registry.committed_accuracy(source),
        source=source.as_dict(),
    )
