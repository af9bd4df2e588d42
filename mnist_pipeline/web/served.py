"""A model the web server answers with: its classifier, and what the page and API say of it."""

from dataclasses import dataclass, field

from mnist_pipeline import registry
from mnist_pipeline.inference import Classifier, load_classifier
from mnist_pipeline.registry import ModelSource


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
        """The model as the API names it in every reading: its source (reference, revision, md5)
        and how it is served (its version: the registry's, else its revision's or md5's start)."""
        return {
            **self.source,
            "label": self.label,
            "name": self.name,
            "version": self.version,
            "accuracy": self.accuracy,
        }


def serve(source: ModelSource) -> ServedModel:
    """Load the model `source` names, for the server: its version is the registry's, else the
    revision's, else the file's md5 (short)."""
    version = source.version or (source.revision or source.md5)[:8]
    return ServedModel(
        classifier=load_classifier(registry.local_file(source)),
        label=source.label(),
        name=registry.MODEL_NAME,
        version=version,
        accuracy=registry.committed_accuracy(source),
        source=source.as_dict(),
    )
