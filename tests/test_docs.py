"""Every console block of README.md and docs/*.md, run as written in a scratch clone, page by
page in reading order, its shown output compared (tests/support/doc_blocks.py says how)."""

import os
import shutil
import socket
from pathlib import Path

import pytest

from tests.support.doc_blocks import (
    PAGES,
    Page,
    console_pages,
    make_clone,
    run_page,
    shown_matches,
    steps,
)
from tests.support.project import DVC, ENV, ROOT, run

COLUMNS = "120"  # a terminal's width: `dvc exp show` fits it
MAKE_VARIABLES = {"MAKEFLAGS", "MAKELEVEL", "MFLAGS", "MAKEOVERRIDES"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_every_page_with_a_console_block_is_run():
    assert console_pages() <= {page.path for page in PAGES}
    assert "README.md" in console_pages()  # a page is found by its ```console line


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """Each page's clone as the page left it, for the pages that go on from it."""
    return {}


@pytest.fixture(scope="module")
def pipeline_clone(tmp_path_factory):
    """A clone of the working tree with the pipeline's outputs, as after `make pipeline`."""
    for output in ("data/raw", "data/prepared", "models/model.tflite"):
        if not (ROOT / output).exists():
            pytest.skip(f"needs the pipeline's outputs ({output}): run `make pipeline` first")
    clone = make_clone(tmp_path_factory.mktemp("docs") / "mnist")
    if run(clone, DVC, "status", "--quiet", check=False).returncode != 0:
        pytest.skip("the workspace's data/ and models/ are not dvc.lock's: run `make pipeline`")
    return clone


def play(page: Page, start: Path, folder: Path) -> Path:
    """Run `page`'s console blocks in a copy of the clone `start`; return the copy as it is left."""
    clone = folder / "mnist"
    shutil.copytree(start, clone, symlinks=True)
    # A reader's shell: not inside `make test`'s make, whose variables make a nested make print
    # "Entering directory" lines the docs do not show.
    outside_make = {k: v for k, v in os.environ.items() if k not in MAKE_VARIABLES}
    env = {**outside_make, **ENV, "COLUMNS": COLUMNS, "HOME": str(folder / "home")}
    port = None
    if page.port is not None:
        env["PORT"] = str(free := free_port())  # for `make serve`
        port = (page.port, free)
    outcome = run_page(ROOT / page.path, clone, env, port)
    assert outcome.ran or outcome.not_run, f"{page.path}: no console block"
    return clone


def start_of(page: Page, pipeline_clone: Path, finished: dict[str, Path], folder: Path) -> Path:
    """The clone `page` starts in: after the page it goes on from, run first if it has not."""
    if page.after is None:
        return pipeline_clone
    if page.after not in finished:
        before = next(other for other in PAGES if other.path == page.after)
        start = start_of(before, pipeline_clone, finished, folder / "before")
        finished[before.path] = play(before, start, folder / "before")
    return finished[page.after]


@pytest.mark.e2e
@pytest.mark.parametrize("page", PAGES, ids=[page.path for page in PAGES])
def test_console_blocks_run_as_written(page, pipeline_clone, finished, tmp_path):
    if page.ci and os.environ.get("CI") != "true":
        pytest.skip(f"{page.path} trains for minutes: runs where CI=true")
    start = start_of(page, pipeline_clone, finished, tmp_path)
    finished[page.path] = play(page, start, tmp_path)


def test_a_block_is_commands_each_with_the_output_shown_after_it():
    block = "$ echo a   # a comment\none\n\ntwo\n$ true\n$ echo b\nb\n\n"
    assert [(step.command, step.shown) for step in steps(block)] == [
        ("echo a   # a comment", ["one", "", "two"]),
        ("true", []),
        ("echo b", ["b"]),
    ]
    with pytest.raises(ValueError, match="output before any"):
        steps("stray\n$ true\n")


@pytest.mark.parametrize(
    ("shown", "printed", "same"),
    [
        (["a 1", "b 2"], "a 1  \nb 2\n", True),  # trailing blanks do not count
        (["a 1", "b 2"], "a 1\nb 3\n", False),
        (["a 1"], "a 1\nb 2\n", False),  # a line more
        (["a 1", "b 2"], "a 1\n", False),  # a line less
        (
            ["A: HEAD (revision 46731e0, md5 63962c5e)"],
            "A: HEAD (revision 9de7b4a, md5 63962c5e)",
            True,
        ),
        (
            ["A: HEAD (revision 46731e0, md5 63962c5e)"],
            "A: HEAD (revision 9de7b4a, md5 63962c5f)",
            False,
        ),
        (["revision 46731e0"], "revision 46731e0f", False),  # seven hex digits, no more
        (["first", "...", "last"], "first\nlast\n", True),
        (["first", "...", "last"], "first\nx\ny\nlast\n", True),
        (["first", "...", "last"], "first\nx\n", False),
        (["looked in .../docs/models)"], "looked in /tmp/x/docs/models)", True),
        (["looked in .../docs/models)"], "looked in /tmp/x/models)", False),
        (["a.b"], "axb", False),  # the rest is literal
    ],
)
def test_shown_output_is_compared_line_by_line_with_masks(shown, printed, same):
    assert shown_matches(shown, printed) is same
