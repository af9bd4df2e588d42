"""A folder made read-only for a test, also where the tests run as root, whom modes do not stop."""

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest


@contextlib.contextmanager
def read_only(folder: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """`folder` (made if missing) at mode 0o555 while the block runs; as root, a temporary file
    asked for anywhere is refused as the kernel refuses others (the collection's writes make one
    beside their file first)."""

    def refused(*args: object, dir: str, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied", dir)

    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o555)
    try:
        with monkeypatch.context() as patch:
            if os.geteuid() == 0:
                patch.setattr(tempfile, "mkstemp", refused)
            yield
    finally:
        folder.chmod(0o755)
