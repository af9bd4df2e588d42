"""The one exception type that reaches the user as a one-line message instead of a traceback."""


class PipelineError(Exception):
    """Bad input (params, files, sources): the message names the key or file and what is wrong."""
