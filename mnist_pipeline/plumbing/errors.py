"""The exception types that reach the user as a one-line message instead of a traceback."""

from pathlib import Path


class PipelineError(Exception):
    """Bad input (params, files, sources): the message names the key or file and what is wrong."""


class ModelFileError(PipelineError):
    """A model file that is missing, or no model of its kind: `path: problem`. Raised where the
    file is read, without advice; cli.run adds what makes one, which only the command knows."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path, self.problem = path, problem


def one_line(error: BaseException) -> str:
    """Another library's exception as one line: its type, and its message's words."""
    detail = " ".join(str(error).split())
    return f"{type(error).__name__}: {detail}" if detail else type(error).__name__
