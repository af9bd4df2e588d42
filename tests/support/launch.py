"""Run the web server in a child process on a free loopback port, for tests and scripts.

The child is the real command (`python -m mnist_pipeline.web --port 0`), so whatever drives it
(the browser test, the screenshot, the load benchmark) exercises what a person starts.
"""

import contextlib
import queue
import re
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

# The folder holding mnist_pipeline/: the child imports the very same package from there.
PACKAGE_PARENT = Path(__file__).resolve().parents[2]
SERVING_LINE = re.compile(r"serving (http://\S+)")


@dataclass(frozen=True)
class Server:
    url: str  # ends with "/"
    process: subprocess.Popen
    log: list[str]  # every line the server has written to stderr so far


@contextlib.contextmanager
def serving(
    *models: Path | str,
    options: Sequence[str] = (),
    cwd: Path = PACKAGE_PARENT,
    env: dict[str, str] | None = None,
    start_timeout: float = 180,
) -> Iterator[Server]:
    """Start the server on 127.0.0.1 for `models` (files, or references as --model takes them,
    resolved in `cwd`) with the command's other `options` (`--collect DIR`), yield it once it
    listens, then stop it."""
    model_options = [f"--model={m.resolve() if isinstance(m, Path) else m}" for m in models]
    process = subprocess.Popen(
        [sys.executable, "-m", "mnist_pipeline.web", "--port=0", *model_options, *options],
        cwd=cwd,
        env=env,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    urls: queue.Queue[str | None] = queue.Queue()
    log: list[str] = []

    def read_stderr() -> None:
        # Keep reading to the end: a full pipe would block the server's logging.
        for line in process.stderr:
            log.append(line.rstrip())
            if match := SERVING_LINE.search(line):
                urls.put(match[1])
        urls.put(None)  # the process has closed stderr: it ended

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    try:
        try:
            url = urls.get(timeout=start_timeout)
        except queue.Empty:
            url = None
        if url is None:
            raise RuntimeError(
                f"the web server did not start within {start_timeout:.0f} s; it said:\n"
                + "\n".join(log[-20:])
            )
        yield Server(url, process, log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        reader.join(timeout=5)
