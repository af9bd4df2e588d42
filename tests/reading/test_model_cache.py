"""The user cache of models fetched by reference (registry.local_file): each use checks the
cached file's md5 against dvc.lock's, a mismatch is fetched again once, and the cache is kept
where no other user can plant a model. The fetch is DVC's `dvc.api.open`, replaced here by one
that serves chosen bytes."""

import hashlib
import io
import stat
from pathlib import Path

import dvc.api
import pytest

from mnist_pipeline.plumbing.errors import PipelineError
from mnist_pipeline.plumbing.paths import CACHE_ENV
from mnist_pipeline.reading import registry
from mnist_pipeline.reading.registry import ModelSource

MODEL = b"TFL3 the bytes of a model" * 1000
SOURCE = ModelSource(
    reference="HEAD",
    path=Path("models/model.tflite"),
    md5=hashlib.md5(MODEL).hexdigest(),
    revision="a" * 40,
)


@pytest.fixture
def fetches(monkeypatch, tmp_path) -> list[bytes]:
    """The bytes each fetch serves, in order (MODEL unless a test says otherwise); a fetch takes
    the first, so what is left says how many ran. The cache is a new folder of tmp_path."""
    served = [MODEL, MODEL]
    monkeypatch.setattr(dvc.api, "open", lambda *args, **kwargs: io.BytesIO(served.pop(0)))
    monkeypatch.setattr(registry, "remote", lambda revision: "remote storage")
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    return served


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_model_is_fetched_once_into_folders_and_a_file_of_this_user_alone(fetches, tmp_path):
    cached = registry.local_file(SOURCE)
    assert cached == tmp_path / "cache/models" / f"{SOURCE.md5}.tflite"
    assert cached.read_bytes() == MODEL and len(fetches) == 1
    assert (mode(tmp_path / "cache"), mode(cached.parent), mode(cached)) == (0o700, 0o700, 0o600)
    assert registry.local_file(SOURCE) == cached and len(fetches) == 1  # from the cache


@pytest.mark.parametrize(
    "damage",
    [
        lambda model: model[:1000],  # cut short
        lambda model: model[:5000] + bytes([model[5000] ^ 0xFF]) + model[5001:],  # a byte flipped
    ],
    ids=["truncated", "flipped"],
)
def test_a_cached_model_that_is_not_dvc_locks_is_fetched_again(fetches, damage, caplog):
    cached = registry.local_file(SOURCE)
    cached.write_bytes(damage(MODEL))
    assert registry.local_file(SOURCE) == cached and not fetches  # fetched a second time
    assert hashlib.md5(cached.read_bytes()).hexdigest() == SOURCE.md5  # the label's md5
    [warning] = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warning.endswith("not the md5 of dvc.lock: fetching it again") and str(cached) in warning


def test_a_download_of_other_bytes_is_one_line_and_keeps_nothing(fetches, tmp_path):
    fetches[0] = MODEL[:-1] + b"!"
    with pytest.raises(PipelineError) as raised:
        registry.local_file(SOURCE)
    wrong = hashlib.md5(MODEL[:-1] + b"!").hexdigest()
    assert str(raised.value) == (
        f"HEAD: fetched models/model.tflite of revision aaaaaaa from remote storage, but its md5 "
        f"is {wrong}, not {SOURCE.md5} of dvc.lock: kept nothing"
    )
    assert list((tmp_path / "cache/models").iterdir()) == []


def test_a_damaged_cached_model_fetched_again_as_other_bytes_is_one_line(fetches, tmp_path):
    cached = registry.local_file(SOURCE)
    cached.write_bytes(b"planted")
    fetches[0] = b"still not the model"
    with pytest.raises(PipelineError, match="but its md5 is .*: kept nothing$"):
        registry.local_file(SOURCE)
    assert list(cached.parent.iterdir()) == []  # neither the damaged copy nor the download


@pytest.mark.parametrize(
    ("setting", "error"),
    [
        ("file", "MNIST_PIPELINE_CACHE={tmp}/file: cannot keep models in {tmp}/file: not a folder"),
        (
            "file/cache",
            "MNIST_PIPELINE_CACHE={tmp}/file/cache: cannot keep models in {tmp}/file/cache: "
            "Not a directory",
        ),
    ],
)
def test_a_cache_setting_that_is_no_folder_is_one_line_naming_the_variable(
    fetches, monkeypatch, tmp_path, setting, error
):
    (tmp_path / "file").write_bytes(b"")
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / setting))
    with pytest.raises(PipelineError) as raised:
        registry.local_file(SOURCE)
    assert str(raised.value) == error.format(tmp=tmp_path)


# The cache's root may be writable by the user's group (umask 002, as Debian and Ubuntu give each
# user a group of their own, and the fetch stage makes it so), not by everyone; models/ by no one.
@pytest.mark.parametrize(
    ("folder", "folder_mode", "refused"),
    [
        ("cache", 0o755, False),
        ("cache", 0o775, False),
        ("cache", 0o757, True),
        ("cache", 0o1777, True),
        ("cache/models", 0o755, False),
        ("cache/models", 0o775, True),
        ("cache/models", 0o757, True),
        ("cache/models", 0o1777, True),
    ],
)
def test_a_cache_folder_others_may_write_to_is_refused(
    fetches, tmp_path, folder, folder_mode, refused
):
    (tmp_path / "cache/models").mkdir(parents=True)
    (tmp_path / folder).chmod(folder_mode)
    if not refused:
        assert registry.local_file(SOURCE).read_bytes() == MODEL
        return
    with pytest.raises(PipelineError) as raised:
        registry.local_file(SOURCE)
    assert str(raised.value) == (
        f"MNIST_PIPELINE_CACHE={tmp_path}/cache: others could plant a model in "
        f"{tmp_path}/{folder} ({stat.filemode(stat.S_IFDIR | folder_mode)}: writable by others): "
        f"run `chmod go-w {tmp_path}/{folder}` if it is yours, or point MNIST_PIPELINE_CACHE at "
        "a folder of your own"
    )
    assert len(fetches) == 2  # nothing fetched into it
