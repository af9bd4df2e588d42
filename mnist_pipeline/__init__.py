"""Library behind the DVC stages of the reproducible MNIST pipeline (see dvc.yaml)."""
