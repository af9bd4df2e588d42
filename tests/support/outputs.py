"""The pipeline's own outputs in this checkout, for the tests that read real MNIST digits with the
real model: they skip where `make pipeline` has not run."""

import pytest

from mnist_pipeline.plumbing import paths
from tests.support.source import ROOT

needs_the_pipelines_model = pytest.mark.skipif(
    not (ROOT / paths.SERVING_MODEL_FILE).is_file()
    or not (ROOT / paths.RAW_DIR / "x_test.npy").is_file(),
    reason="needs the pipeline's trained model and raw test set (`make pipeline`)",
)
