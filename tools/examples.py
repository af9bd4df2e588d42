"""The example inputs the docs use, in docs/examples/, from MNIST's test set (data/raw):
seven.png and seven.jpg (test digit 1) and four.png (test digit 5), drawn dark on white at
280x280 as a scan of a digit would be; instances.json, test digits 1 and 2 as TensorFlow
Serving's predict takes them (docs/web.md). Run after `dvc repro`: python tools/examples.py"""

import json
from pathlib import Path

import numpy as np
from PIL import Image

from mnist_pipeline.data.preprocessing import normalize_pixels
from mnist_pipeline.plumbing import paths

FOLDER = Path("docs/examples")
SIDE = 280  # pixels: ten to each of MNIST's


def drawing(digit: np.ndarray) -> Image.Image:
    """A 28x28 MNIST digit (light on dark) as a picture of it, dark on white, SIDE pixels."""
    return Image.fromarray(255 - digit).resize((SIDE, SIDE), Image.Resampling.NEAREST)


def main() -> None:
    digits = np.load(paths.RAW_DIR / "x_test.npy")
    FOLDER.mkdir(exist_ok=True)
    drawing(digits[0]).save(FOLDER / "seven.png", optimize=True)
    drawing(digits[0]).save(FOLDER / "seven.jpg", quality=90)
    drawing(digits[4]).save(FOLDER / "four.png", optimize=True)
    instances = normalize_pixels(digits[:2]).tolist()
    (FOLDER / "instances.json").write_text(json.dumps({"instances": instances}) + "\n")


if __name__ == "__main__":
    main()
