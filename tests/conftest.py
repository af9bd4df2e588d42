"""Shared fixtures."""

import numpy as np
import pytest

from mnist_pipeline.params import TrainParams
from mnist_pipeline.plumbing.errors import PipelineError
from mnist_pipeline.training import kernels
from tests.support.browser import browser  # noqa: F401 (a fixture for the tests that use it)
from tests.support.glyphs import glyph_model, glyph_model_file  # noqa: F401 (fixtures: a font digit reader)
from tests.support.project import DVC, copy_project, make_project, run
from tests.support.ray_cluster import ray_cluster  # noqa: F401 (a fixture: two Ray nodes on loopback)
from tests.support.remote import s3, shared  # noqa: F401 (fixtures: an S3 server and a project pushed to it)
from tests.support.synthetic import tiny_mnist_arrays, write_npz


def pytest_configure(config):
    """Before any test module loads TensorFlow: tests train on the kernel path the stage pins,
    or, on a CPU that cannot run it (ARM, no AVX2), on TensorFlow's own, where the tests that
    need the pinned path skip."""
    try:
        kernels.pin(TrainParams().threads, TrainParams().instruction_set)
    except PipelineError:
        kernels.pin(TrainParams().threads, "native")


@pytest.fixture(scope="session")
def tiny_mnist() -> dict[str, np.ndarray]:
    return tiny_mnist_arrays()


@pytest.fixture(scope="session")
def tiny_mnist_npz(tmp_path_factory, tiny_mnist):
    return write_npz(tmp_path_factory.mktemp("mine") / "mnist.npz", tiny_mnist)


@pytest.fixture(scope="session")
def reproduced_template(tmp_path_factory, tiny_mnist_npz):
    """The project on tiny data after `dvc repro`, committed: built once, never modified."""
    repo = make_project(tmp_path_factory.mktemp("template") / "project", tiny_mnist_npz)
    run(repo, DVC, "repro")
    run(repo, "git", "add", "-A")
    run(repo, "git", "commit", "-qm", "reproduced")
    return repo


@pytest.fixture
def reproduced_project(reproduced_template, tmp_path):
    """A fresh copy of the reproduced project for one test to change as it likes."""
    return copy_project(reproduced_template, tmp_path / "project")
