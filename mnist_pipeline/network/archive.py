"""The .keras archive: saved so that its bytes depend only on the model, loaded with a clear
error when the file is not a model."""

import json
import zipfile
from pathlib import Path

import keras

from mnist_pipeline.plumbing.errors import ModelFileError, PipelineError
from mnist_pipeline.plumbing.files import ZIP_SIGNATURE

# A zip entry's earliest possible date: the .keras archive then carries no save time.
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def save_model(model: keras.Model, path: Path) -> None:
    """Save as a .keras archive whose bytes depend only on the model.

    Keras stamps the save time into metadata.json and each zip entry (keras-team/keras#15948), and
    numbers shared objects in config.json by their memory address (keras-team/keras#23256). The
    archive is rewritten without dates and with those ids renumbered; load_model reads it as usual.
    """
    model.save(path)
    with zipfile.ZipFile(path) as archive:
        entries = [(info, archive.read(info)) for info in archive.infolist()]
    with zipfile.ZipFile(path, "w") as archive:
        for info, data in entries:
            if info.filename == "metadata.json":
                metadata = json.loads(data)
                metadata.pop("date_saved", None)
                data = json.dumps(metadata).encode()
            elif info.filename == "config.json":
                data = json.dumps(renumber_shared_objects(json.loads(data), {})).encode()
            entry = zipfile.ZipInfo(info.filename, date_time=ZIP_EPOCH)
            entry.compress_type = info.compress_type
            entry.external_attr = 0o644 << 16
            archive.writestr(entry, data)


def renumber_shared_objects(config: object, numbers: dict[int, int]) -> object:
    """Replace each `shared_object_id` with 1, 2, ... in order of first appearance."""
    if isinstance(config, list):
        return [renumber_shared_objects(item, numbers) for item in config]
    if isinstance(config, dict):
        return {
            key: numbers.setdefault(value, len(numbers) + 1)
            if key == "shared_object_id"
            else renumber_shared_objects(value, numbers)
            for key, value in config.items()
        }
    return config


def load_model(path: Path) -> keras.Model:
    """Load a .keras archive that is there (checked where it was named: check_model_file); a
    damaged or foreign file is a ModelFileError, a zip Keras cannot load one PipelineError line."""
    problem = archive_problem(path)
    if problem:
        raise ModelFileError(path, problem)
    try:
        return keras.models.load_model(path)
    # A zip that is no Keras archive fails in several ways, depending on what it lacks.
    except (ValueError, OSError, KeyError, TypeError, zipfile.BadZipFile) as error:
        raise PipelineError(f"{path}: not a loadable Keras model ({error})") from None


def archive_problem(path: Path) -> str | None:
    """What makes `path` no .keras archive, read from the zip alone; None if it looks like one."""
    if not zipfile.is_zipfile(path):
        with path.open("rb") as file:
            starts_as_zip = file.read(len(ZIP_SIGNATURE)) == ZIP_SIGNATURE
        if starts_as_zip:
            return "damaged: a zip archive cut short or corrupted, not a whole Keras model"
        return "not a Keras model (a .keras file is a zip archive, this is none)"
    try:
        with zipfile.ZipFile(path) as archive:
            corrupt = archive.testzip()
            names = set(archive.namelist())
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        return f"damaged: {error}"
    if corrupt:
        return f"damaged: its member {corrupt} is corrupt"
    if not {"config.json", "metadata.json"} <= names:
        return "not a Keras model (a zip archive without config.json and metadata.json)"
    return None
