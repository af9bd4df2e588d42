"""`python -m mnist_pipeline.sweep`: the same as the `mnist-sweep` command."""

from mnist_pipeline.sweep.command import console

console()
