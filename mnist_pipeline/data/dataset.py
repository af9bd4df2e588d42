"""The MNIST arrays as the pipeline stores them, and the checks every source must pass."""

import numpy as np

from mnist_pipeline.plumbing.arrays import sha256_of_array
from mnist_pipeline.plumbing.errors import PipelineError

ARRAY_NAMES = ("x_train", "y_train", "x_test", "y_test")
IMAGE_SHAPE = (28, 28)
NUM_CLASSES = 10

# SHA-256 of each original MNIST array's raw C-order bytes: the same whichever file format
# served them. (Training labels begin 5 0 4 1 9.)
MNIST_SHA256 = {
    "x_train": "741c988805d008ac6e4c904b69001ba184c24b2c540a4ef403f4c71b676cf757",
    "y_train": "1feba77c54802fa5339a11837ea4b2866434b83314ec45192930f1df69120c13",
    "x_test": "6d87418db22cc8025d05968bec9bd5c3932904b23485740db143a061a2c9d161",
    "y_test": "ddeff807876a9661a1110d45c266c86239a3a1b7d37da0c3716a7a683c852ff5",
}

Arrays = dict[str, np.ndarray]


def check_arrays(arrays: Arrays, verify_checksums: bool, origin: str) -> None:
    """Raise PipelineError unless `arrays` are in MNIST's format (and, if asked, are MNIST itself).

    Format: x_* uint8 (N, 28, 28), y_* uint8 (N,) with labels 0-9. `origin` names where they
    came from, for the message.
    """
    missing = [name for name in ARRAY_NAMES if name not in arrays]
    if missing:
        raise PipelineError(f"{origin}: missing array(s) {', '.join(missing)}")
    for split in ("train", "test"):
        images, labels = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != IMAGE_SHAPE:
            raise PipelineError(
                f"{origin}: x_{split} must be uint8 of shape (N, 28, 28), "
                f"got {images.dtype} {images.shape}"
            )
        if len(images) == 0:
            raise PipelineError(f"{origin}: x_{split} holds no images")
        if labels.dtype != np.uint8 or labels.shape != images.shape[:1]:
            raise PipelineError(
                f"{origin}: y_{split} must be uint8 of shape ({images.shape[0]},), "
                f"got {labels.dtype} {labels.shape}"
            )
        if labels.max() >= NUM_CLASSES:
            raise PipelineError(f"{origin}: y_{split} has label {labels.max()}, outside 0-9")
    if verify_checksums:
        for name in ARRAY_NAMES:
            if sha256_of_array(arrays[name]) != MNIST_SHA256[name]:
                raise PipelineError(
                    f"{origin}: {name} does not match the original MNIST's SHA-256 "
                    "(set fetch.verify_checksums: false for other data in MNIST's format)"
                )
