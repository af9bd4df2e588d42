"""The one exception type that reaches the user as a one-line message instead of a traceback."""


class PipelineError(Exception):
    """Bad input (params, files, sources): the message names the key or file and what is wrong."""


def one_line(error: BaseException) -> str:
    """Another library's exception as one line: its type, and its message's words."""
    detail = " ".join(str(error).split())
    return f"{type(error).__name__}: {detail}" if detail else type(error).__name__
