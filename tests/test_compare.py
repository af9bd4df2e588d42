"""`mnist-compare`: two models digit by digit, from committed predictions or by running them."""

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from mnist_pipeline import compare
from mnist_pipeline.compare import agreement, build_parser, draw_changes
from mnist_pipeline.plumbing.errors import PipelineError
from mnist_pipeline.reading.registry import ModelSource
from tests.support.project import DVC, run


def test_agreement_puts_each_digit_in_exactly_one_count():
    # Each count different, so that no two can be mixed up: A alone right on 2 and 3, B alone
    # on 1, both on 0 and 6, neither on 4 and 5.
    actual = np.array([0, 1, 2, 3, 4, 5, 6])
    first = np.array([0, 9, 2, 3, 9, 9, 6])
    second = np.array([0, 1, 9, 9, 9, 9, 6])
    counts = agreement(actual, first, second)
    assert (counts.both_right, counts.only_first, counts.only_second, counts.both_wrong) == (
        2,
        2,
        1,
        2,
    )


def test_the_digits_read_differently_are_drawn_with_both_answers(tiny_mnist):
    pixels = tiny_mnist["x_test"].reshape(-1, 784).astype(np.float32) / 255
    actual = tiny_mnist["y_test"]
    second = actual.copy()
    second[[3, 7, 8]] = (actual[[3, 7, 8]] + 1) % 10
    changed, sheet = draw_changes(pixels, actual, actual, second, count=2)
    assert changed.tolist() == [3, 7]  # test-set order, up to the count
    assert sheet.size == (2 * (112 + 4), 112 + 20 + 4)  # two 4x-zoomed digits with captions
    nothing, empty = draw_changes(pixels, actual, actual, actual, count=100)
    assert nothing.size == 0 and empty.size == (116, 136)


def test_with_nothing_drawn_the_sheet_says_how_many_differ(tiny_mnist, monkeypatch):
    said = []
    monkeypatch.setattr(compare, "draw_digits", lambda pixels, captions, empty: said.append(empty))
    actual = tiny_mnist["y_test"]
    pixels = np.zeros((len(actual), 784), np.float32)
    draw_changes(pixels, actual, actual, (actual + 1) % 10, count=0)
    draw_changes(pixels, actual, actual, actual, count=0)
    assert said == [f"{len(actual)} read differently, none drawn", "no digit read differently"]


@pytest.mark.parametrize(("count", "valid"), [("0", True), ("10000", True), ("-1", False),
                                              ("10001", False), ("many", False)])  # fmt: skip
def test_the_count_drawn_is_bounded(count, valid):
    parse = build_parser().parse_args
    if valid:
        assert parse(["a", "b", "--count", count]).count == int(count)
    else:
        with pytest.raises(SystemExit):
            parse(["a", "b", "--count", count])
    with pytest.raises(SystemExit):  # two models, no more and no fewer
        parse(["a"])
    assert isinstance(parse(["a", "b"]), argparse.Namespace)


COUNT_LINE = re.compile(r"^\s+(both right|both wrong|A right only|B right only)\s+(\d+)$")


def counts_printed(stdout: str) -> dict[str, int]:
    return {
        match[1]: int(match[2]) for line in stdout.splitlines() if (match := COUNT_LINE.match(line))
    }


def recount(first: pd.DataFrame, second: pd.DataFrame) -> dict[str, int]:
    """The four counts, from the two predictions files alone."""
    a_right = first["predicted"] == first["actual"]
    b_right = second["predicted"] == second["actual"]
    return {
        "both right": int((a_right & b_right).sum()),
        "both wrong": int((~a_right & ~b_right).sum()),
        "A right only": int((a_right & ~b_right).sum()),
        "B right only": int((~a_right & b_right).sum()),
    }


@pytest.mark.e2e
def test_two_experiments_compared_from_their_committed_predictions(reproduced_project, tmp_path):
    repo = reproduced_project
    tables = {}
    for name, units in (("narrow", "[4]"), ("wide", "[64]")):
        run(repo, DVC, "exp", "run", "-n", name, "-S", f"model.dense.hidden_units={units}")
        shutil.copy(repo / "reports/evaluate/predictions.csv", tmp_path / f"{name}.csv")
        tables[name] = pd.read_csv(tmp_path / f"{name}.csv")
    command = [sys.executable, "-m", "mnist_pipeline.compare"]

    by_name = run(repo, *command, "narrow", "wide", "--out", str(tmp_path / "changed.png"))
    counts = counts_printed(by_name.stdout)
    assert (tables["narrow"]["actual"] == tables["wide"]["actual"]).all()
    assert counts == recount(tables["narrow"], tables["wide"])
    assert counts["A right only"] != counts["B right only"]  # A and B told apart
    assert sum(counts.values()) == len(tables["narrow"]) == 100
    assert "its committed reports/evaluate/predictions.csv" in by_name.stderr
    differently = int((tables["narrow"]["predicted"] != tables["wide"]["predicted"]).sum())
    assert f"{differently} read differently" in by_name.stdout
    assert differently > 0 and Image.open(tmp_path / "changed.png").format == "PNG"

    # The workspace's model file (wide's, the last experiment run) has no committed table: it
    # is run on the test set, and reads as its committed predictions say.
    by_file = run(repo, *command, "narrow", "models/model.tflite", "--out", str(tmp_path / "f.png"))
    assert counts_printed(by_file.stdout) == counts
    assert "reading the 100 test digits" in by_file.stderr


def compare_command(repo: Path, *arguments: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "mnist_pipeline.compare", *arguments]
    return run(repo, *command, check=False, timeout=300)


def one_line_error(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 1 and result.stdout == "", result.stderr
    [line] = [line for line in result.stderr.splitlines() if not line.startswith("INFO ")]
    return line.removeprefix("mnist-compare: error: ")


def special_file(tmp_path: Path, kind: str) -> Path:
    path = tmp_path / kind
    if kind == "pipe":
        os.mkfifo(path)
    elif kind == "folder":
        path.mkdir()
    else:  # a link to a character device: were it followed, the device would not be replaced
        path.symlink_to("/dev/null")
    return path


@pytest.mark.parametrize(
    ("kind", "named"),
    [("pipe", "a named pipe"), ("folder", "a folder"), ("device", "a character device")],
)
def test_out_is_refused_unless_a_regular_file_or_a_new_name(tmp_path, kind, named):
    out = special_file(tmp_path, kind)

    def identity(path: Path) -> tuple[int, int, int]:  # not its access time: reading a link sets it
        status = os.lstat(path)
        return status.st_ino, status.st_mode, status.st_mtime_ns

    before = identity(out)
    error = one_line_error(compare_command(tmp_path, "a", "b", "--out", str(out)))
    assert error == f"--out {out}: {named}, not a regular file; name a PNG file to write"
    assert identity(out) == before


def test_out_in_a_missing_folder_is_refused_and_no_folder_made(tmp_path):
    out = tmp_path / "missing/compare.png"
    error = one_line_error(compare_command(tmp_path, "a", "b", "--out", str(out)))
    assert error == f"--out {out}: no folder {out.parent}; make it first"
    assert not out.parent.exists()


@pytest.mark.parametrize("existing", [False, True])
def test_out_may_be_a_new_name_or_a_regular_file(tmp_path, existing):
    out = tmp_path / "compare.png"
    if existing:
        out.write_bytes(b"an older picture")
    compare.check_out(out)  # no error: the refusals come before any model is read


SOURCE = ModelSource("HEAD", Path("models/model.tflite"), "0" * 32, revision="a" * 40)
NOT_EVALUATES = "HEAD: its committed reports/evaluate/predictions.csv is not what evaluate writes"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "EmptyDataError: No columns to parse from file"),
        (
            "actual,predicted\n1,2\n1,2,3\n",
            "ParserError: Error tokenizing data. C error: Expected 2 fields in line 3, saw 3",
        ),
        ("digit,answer\n1,2\n", "columns digit, answer, not actual, predicted"),
        ("actual\n1\n", "columns actual, not actual, predicted"),
        ("actual,predicted\n", "values that are not whole numbers, or none"),
        ("actual,predicted\n1,x\n", "values that are not whole numbers, or none"),
        ("actual,predicted\n1,\n", "values that are not whole numbers, or none"),
        ("actual,predicted\n1,0.5\n", "values that are not whole numbers, or none"),
        ("actual,predicted\n1,10\n", "numbers other than the digits 0-9"),
        ("actual,predicted\n-1,1\n", "numbers other than the digits 0-9"),
    ],
)
def test_a_predictions_table_not_as_evaluate_writes_it_is_one_line(text, problem):
    with pytest.raises(PipelineError) as raised:
        compare.read_predictions(SOURCE, text)
    assert str(raised.value).startswith(f"{NOT_EVALUATES} ({problem}")
    assert "\n" not in str(raised.value)


def test_digits_0_and_9_are_read():
    table = compare.read_predictions(SOURCE, "actual,predicted\n0,9\n9,0\n")
    assert table.to_numpy().tolist() == [[0, 9], [9, 0]]


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"", "EmptyDataError: No columns to parse from file"),
        (b"actual,predicted\n7,\xff\n", "not UTF-8 text: invalid start byte at byte 19"),
    ],
)
def test_a_committed_predictions_table_that_is_not_evaluates_is_one_line(
    reproduced_project, content, problem
):
    repo = reproduced_project
    (repo / "reports/evaluate/predictions.csv").write_bytes(content)
    run(repo, "git", "commit", "-qam", "a predictions table evaluate did not write")
    error = one_line_error(compare_command(repo, "HEAD", "HEAD~1", "--out", "c.png"))
    assert error == f"{NOT_EVALUATES} ({problem})"


@pytest.mark.e2e
def test_a_revision_from_before_the_litert_export_is_compared_by_its_predictions(
    reproduced_project, tmp_path
):
    repo = reproduced_project
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    for stage in lock["stages"].values():  # as dvc.lock was before the train stage exported it
        stage["outs"] = [out for out in stage["outs"] if out["path"] != "models/model.tflite"]
    (repo / "dvc.lock").write_text(yaml.safe_dump(lock))
    run(repo, "git", "commit", "-qam", "before the LiteRT export")
    result = compare_command(repo, "HEAD", "HEAD~1", "--out", str(tmp_path / "c.png"))
    assert result.returncode == 0, result.stderr
    table = pd.read_csv(repo / "reports/evaluate/predictions.csv")
    assert counts_printed(result.stdout) == recount(table, table)
    keras_md5 = next(
        out["md5"] for stage in lock["stages"].values() for out in stage["outs"]
        if out["path"] == "models/model.keras"
    )  # fmt: skip
    commit = run(repo, "git", "rev-parse", "--short=7", "HEAD").stdout.strip()
    assert f"A: HEAD (revision {commit}, md5 {keras_md5[:8]})" in result.stdout.splitlines()
