"""`python -m mnist_pipeline.web`: the same as the `mnist-web` command."""

from mnist_pipeline.web.serve import console

console()
