"""The console blocks of README.md and docs/*.md, run as written (tests/test_docs.py).

Sybil finds each ```console block; in it, a line `$ COMMAND` is run in the page's shell and the
lines after it, up to the next `$`, are the output it must print. The shown output is compared
line by line, stdout and stderr together, after masking what differs from one clone or machine to
the next (MASKS); `...` stands for any text within a line, or alone on a line for any number of
lines; a command shown without output may print anything. A command must exit with status 0
unless its shown output has an `error:` line. `<!-- skip: next "why" -->` before a block says it
is not run, and why.
"""

import contextlib
import os
import queue
import re
import shutil
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from unittest import SkipTest

from sybil import Document, Example, Region, Sybil
from sybil.parsers.markdown import CodeBlockParser, SkipParser
from sybil.parsers.markdown.lexers import DirectiveInHTMLCommentLexer

from tests.support.project import BIN, DVC, ROOT, commit_all, run


# Each page in reading order, with the state it starts from: `after` is the page whose clone,
# as that page left it, it goes on in (None: a fresh clone, after `make pipeline`). `ci` pages
# train for minutes: run only where CI=true (.ci/run sets it).
@dataclass(frozen=True)
class Page:
    path: str
    after: str | None = None
    ci: bool = False
    port: int | None = None  # the port the page's servers listen on: the test picks a free one


PAGES = (
    Page("README.md"),
    Page("docs/predict.md"),
    Page("docs/troubleshooting.md"),
    Page("docs/models.md", after="README.md", ci=True),
    Page("docs/reproducibility.md"),
    Page("docs/testing.md"),
    Page("docs/web.md", port=8000),
    Page("docs/collecting.md"),
    Page("docs/sharing.md", port=9000),
    Page("docs/sweeps.md"),
)

# What differs between clones and machines, in a shown output: (pattern, what it stands for).
MASKS = (
    (re.compile(r"\b[0-9a-f]{7}\b"), r"[0-9a-f]{7}"),  # a git commit: every clone makes its own
)
ANY_LINES = "..."
TIMEOUT = 600  # seconds, for any one command
PROMPT = "$ "


@dataclass
class Step:
    command: str
    shown: list[str] = field(default_factory=list)


def steps(block: str) -> list[Step]:
    """The commands of a console block, each with the output shown after it."""
    result: list[Step] = []
    for line in block.splitlines():
        if line.startswith(PROMPT):
            result.append(Step(line[len(PROMPT) :]))
        elif result:
            result[-1].shown.append(line)
        elif line.strip():
            raise ValueError(f"output before any `$ ` command: {line!r}")
    while result and result[-1].shown and not result[-1].shown[-1].strip():
        result[-1].shown.pop()
    return result


def expected_pattern(shown: list[str]) -> re.Pattern[str]:
    """A regex for the whole output: MASKS and `...` as wildcards, the rest literal."""
    parts = []
    for line in shown:
        if line.strip() == ANY_LINES:
            parts.append(r"(?:[^\n]*\n)*?")
            continue
        pieces = []
        for literal in line.rstrip().split(ANY_LINES):
            position, masked = 0, []
            for mask, stands_for in MASKS:
                for match in mask.finditer(literal):
                    masked.append((match.start(), match.end(), stands_for))
            for start, end, stands_for in sorted(masked):
                pieces.append(re.escape(literal[position:start]) + stands_for)
                position = end
            pieces.append(re.escape(literal[position:]))
            pieces.append("[^\n]*")
        parts.append("".join(pieces[:-1]) + r"[ \t]*\n")
    return re.compile("".join(parts))


def shown_matches(shown: list[str], printed: str) -> bool:
    """Whether `printed` is the output `shown`, blank lines at its end aside (as steps drops
    them from the shown output)."""
    lines = "".join(line.rstrip() + "\n" for line in printed.rstrip().splitlines())
    return expected_pattern(shown).fullmatch(lines) is not None


class Shell:
    """One bash for a page, so that `cd`, `source` and `$?` carry from one command to the next
    as in a terminal; each command reads nothing (stdin /dev/null)."""

    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            ["bash", "--noprofile", "--norc"],
            cwd=cwd,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.put(line)

    def run(self, command: str, timeout: float = TIMEOUT) -> tuple[int, str]:
        marker = f"--- {uuid.uuid4().hex} done:"
        self.process.stdin.write(
            f"{{ {command}\n}} </dev/null 2>&1; s=$?; echo; echo '{marker}' $s; (exit $s)\n"
        )
        self.process.stdin.flush()
        printed = []
        while not (line := self.lines.get(timeout=timeout)).startswith(marker):
            printed.append(line)
        return int(line.split()[-1]), "".join(printed)[:-1]  # less the newline echoed before

    def close(self) -> None:
        with contextlib.suppress(ProcessLookupError):  # its whole group, servers included
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()


class ConsoleParser(CodeBlockParser):
    language = "console"

    def __init__(self) -> None:
        super().__init__(self.language)

    def evaluate(self, example: Example) -> None:
        page: PageRun = example.namespace["page"]
        background = example.namespace.pop("background", False)
        for step in steps(example.parsed):
            step = page.localised(step)
            where = f"{Path(example.path).relative_to(ROOT)}, line {example.line}: $ {step.command}"
            page.ran.append(step.command)
            if background:
                page.start(step, where)
                continue
            status, printed = page.shell.run(step.command)
            if status != 0 and not any("error:" in line for line in step.shown):
                raise AssertionError(f"{where}\nexit status {status}:\n{printed}")
            if step.shown and not shown_matches(step.shown, printed):
                shown = "\n".join(step.shown)
                raise AssertionError(f"{where}\nshown:\n{shown}\nprinted:\n{printed}")


class BackgroundParser:
    """`<!-- background -->` before a block: its command, a server, keeps running while the
    page's next blocks run; it has started once it has printed the output shown."""

    def __init__(self) -> None:
        self.lexer = DirectiveInHTMLCommentLexer("background")

    def __call__(self, document: Document) -> Iterator[Region]:
        for lexed in self.lexer(document):
            yield Region(lexed.start, lexed.end, None, self.evaluate)

    def evaluate(self, example: Example) -> None:
        example.namespace["background"] = True


DOCS = Sybil(parsers=[ConsoleParser(), SkipParser(), BackgroundParser()], path=str(ROOT))


@dataclass
class PageRun:
    """A page being run: its shell, the port its servers use for `port`, what ran, what not."""

    shell: Shell
    scratch: Path
    port: tuple[int, int] | None = None  # (as the page says, as the test uses)
    ran: list[str] = field(default_factory=list)
    not_run: list[str] = field(default_factory=list)

    def localised(self, step: Step) -> Step:
        """`step` with the page's port number replaced by the test's (a free one)."""
        if self.port is None:
            return step
        said, used = self.port
        pattern = re.compile(rf"(?<=[: ]){said}\b")
        return Step(
            pattern.sub(str(used), step.command),
            [pattern.sub(str(used), line) for line in step.shown],
        )

    def start(self, step: Step, where: str, timeout: float = 120) -> None:
        log = self.scratch / f"background-{len(self.ran)}.log"
        self.shell.run(f"{{ {step.command}\n}} >{log} 2>&1 &")  # a newline ends a `# comment`
        deadline = time.monotonic() + timeout
        while not shown_matches(step.shown, printed := log.read_text() if log.exists() else ""):
            if time.monotonic() > deadline:
                shown = "\n".join(step.shown)
                raise AssertionError(f"{where}\nshown:\n{shown}\nprinted:\n{printed}")
            time.sleep(0.5)


def run_page(
    page: Path, clone: Path, env: dict[str, str], port: tuple[int, int] | None = None
) -> PageRun:
    """Run every console block of `page` in order in `clone`; return what ran and what not."""
    document: Document = DOCS.parse(page)
    state = PageRun(Shell(clone, env), clone.parent, port)
    document.namespace["page"] = state
    try:
        for example in document.examples():
            try:
                example.evaluate()
            except SkipTest as skipped:  # a block the page marks as not run, and why
                state.not_run.append(f"line {example.line}: {skipped}")
    finally:
        state.shell.close()
    return state


def console_pages() -> set[str]:
    """README.md and the pages of docs/ that hold a console block."""
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    return {
        page.relative_to(ROOT).as_posix()
        for page in pages
        if re.search(r"^```console$", page.read_text(), re.MULTILINE)
    }


def project_files(source: Path = ROOT) -> Iterator[str]:
    """What a clone of the working tree holds: tracked files and new ones git does not ignore."""
    listed = run(source, "git", "ls-files", "-z", "--cached", "--others", "--exclude-standard")
    yield from (name for name in listed.stdout.split("\0") if name and (source / name).exists())


def make_clone(folder: Path, outputs: tuple[str, ...] = ("data", "models")) -> Path:
    """The working tree as a one-commit git repository, its environment the tests' own, with the
    pipeline's outputs (this workspace's, checked against dvc.lock) in its own DVC cache."""
    for name in project_files():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, folder / name)
    for name in outputs:
        shutil.copytree(ROOT / name, folder / name, dirs_exist_ok=True)
    commit_all(folder)
    # The tests' environment as the clone's .venv, which `make` finds installed: no requirements
    # file is newer than its .venv/installed.
    (folder / ".venv").symlink_to(BIN.parent)
    for name in ("requirements.txt", "requirements-dev.txt", "constraints.txt", "pyproject.toml"):
        os.utime(folder / name, (0, 0))
    run(folder, DVC, "commit", "--force", "--quiet")  # the outputs into the clone's cache
    return folder
