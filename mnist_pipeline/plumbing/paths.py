"""Every file the pipeline reads or writes, relative to the repository root (where DVC runs),
and the per-user cache of downloads."""

import os
from pathlib import Path

import platformdirs

PARAMS_FILE = Path("params.yaml")
DVC_LOCK_FILE = Path("dvc.lock")

RAW_DIR = Path("data/raw")  # fetch: the original MNIST arrays, uint8
PREPARED_DIR = Path("data/prepared")  # preprocess: normalized float32 pixels, one-hot labels
# preprocess: the collection's drawings prepared as data/prepared's, the training part repeated
# train.drawings times (no rows at 0) and the held-out part that evaluate scores (the field set)
COLLECTED_TRAIN_DIR = Path("data/collected/train")
FIELD_DIR = Path("data/collected/field")
# The labelled drawings collected from the page and `predict --save` (data/collection.py), in git.
DRAWINGS_DIR = Path("drawings")
MODEL_FILE = Path("models/model.keras")  # train: the Keras model, to load and train further
SERVING_MODEL_FILE = Path("models/model.tflite")  # train: its LiteRT export, what reads digits

REPORTS_DIR = Path("reports")
# train: per-epoch loss and accuracy on the training data, and on the held-out part if any
TRAIN_HISTORY_FILE = REPORTS_DIR / "train" / "train.csv"
VALIDATION_HISTORY_FILE = REPORTS_DIR / "train" / "validation.csv"
METRICS_FILE = REPORTS_DIR / "metrics.json"  # evaluate
PREDICTIONS_FILE = REPORTS_DIR / "evaluate" / "predictions.csv"  # evaluate: confusion matrix
PER_CLASS_FILE = REPORTS_DIR / "evaluate" / "per_class.csv"  # evaluate: precision, recall, F1
MISREAD_IMAGE = REPORTS_DIR / "evaluate" / "misread.png"  # evaluate: most confident mistakes
# evaluate, on the held-out drawings (the field set): as the three above for the test set
FIELD_PREDICTIONS_FILE = REPORTS_DIR / "evaluate" / "field_predictions.csv"
FIELD_PER_CLASS_FILE = REPORTS_DIR / "evaluate" / "field_per_class.csv"
FIELD_MISREAD_IMAGE = REPORTS_DIR / "evaluate" / "field_misread.png"

CACHE_ENV = "MNIST_PIPELINE_CACHE"  # overrides the per-user cache folder of downloads


def user_cache_dir() -> Path:
    """Where downloads are kept between runs: MNIST's sources, models fetched by reference."""
    return Path(os.environ.get(CACHE_ENV) or platformdirs.user_cache_dir("mnist-pipeline"))
