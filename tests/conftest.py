"""Shared fixtures."""

import numpy as np
import pytest
from synthetic import tiny_mnist_arrays


@pytest.fixture(scope="session")
def tiny_mnist() -> dict[str, np.ndarray]:
    return tiny_mnist_arrays()
