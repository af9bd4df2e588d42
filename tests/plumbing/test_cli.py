"""cli.run: one-line errors, and the skipped teardown that keeps profilers and atexit working."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

COMMAND = """
import argparse, atexit, logging, sys
from pathlib import Path
from mnist_pipeline.plumbing import cli
from mnist_pipeline.plumbing.errors import ModelFileError, PipelineError

def main(args):
    atexit.register(lambda: Path("atexit-ran").write_text("yes"))
    for name in ("__main__", "mnist_pipeline.demo", "PIL.PngImagePlugin", "h5py"):
        for level in ("debug", "info", "warning") if args.log else ():
            getattr(logging.getLogger(name), level)("%s %s", name, level)
    if args.fail:
        raise PipelineError("params.yaml: train.epochs must be greater than 0, got -1")
    if args.no_model:
        raise ModelFileError(Path("models/model.tflite"), "no trained model")
    return args.status

parser = argparse.ArgumentParser(prog="demo")
parser.add_argument("--status", type=int, default=0)
parser.add_argument("--fail", action="store_true")
parser.add_argument("--log", action="store_true")
parser.add_argument("--no-model", action="store_true")
hint = {"default": {}, "command": {"model_hint": cli.MISSING_MODEL_HINT}}[sys.argv.pop(1)]
cli.run(main, parser, skip_teardown=True, **hint)
"""


def run_command(tmp_path, *args, profile=False, hint="default"):
    (tmp_path / "demo.py").write_text(COMMAND)
    prefix = ["-m", "cProfile", "-o", "out.prof"] if profile else []
    return subprocess.run(
        [sys.executable, *prefix, "demo.py", hint, *args],
        cwd=tmp_path,
        env={"PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("status", [0, 3])
def test_skipped_teardown_keeps_the_exit_status_and_runs_atexit_handlers(tmp_path, status):
    result = run_command(tmp_path, "--status", str(status))
    assert result.returncode == status, result.stderr
    assert (tmp_path / "atexit-ran").read_text() == "yes"


def test_a_profiler_still_writes_its_results(tmp_path):
    result = run_command(tmp_path, profile=True)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out.prof").stat().st_size > 0
    assert (tmp_path / "atexit-ran").read_text() == "yes"


def test_a_pipeline_error_is_one_line_and_status_1(tmp_path):
    result = run_command(tmp_path, "--fail")
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "demo: error: params.yaml: train.epochs must be greater than 0, got -1"
    ]


@pytest.mark.parametrize(
    ("hint", "advice"),
    [
        ("default", "run `dvc repro` to make it"),
        ("command", "run `dvc repro` in the project first, or name the model with --model PATH"),
    ],
)
def test_a_model_file_error_is_one_line_with_what_makes_the_model(tmp_path, hint, advice):
    result = run_command(tmp_path, "--no-model", hint=hint)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"demo: error: models/model.tflite: no trained model; {advice}"
    ]


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ([], ["__main__ info", "__main__ warning", "mnist_pipeline.demo info",
              "mnist_pipeline.demo warning", "PIL.PngImagePlugin warning", "h5py warning"]),
        (["-v"], ["__main__ debug", "__main__ info", "__main__ warning",
                  "mnist_pipeline.demo debug", "mnist_pipeline.demo info",
                  "mnist_pipeline.demo warning",
                  "PIL.PngImagePlugin info", "PIL.PngImagePlugin warning", "h5py info",
                  "h5py warning"]),
    ],
)  # fmt: skip
def test_verbose_adds_our_debug_lines_and_the_libraries_info_lines_not_their_debug(
    tmp_path, options, expected
):
    result = run_command(tmp_path, "--log", *options)
    assert result.returncode == 0, result.stderr
    assert [line.split(": ", 1)[1] for line in result.stderr.splitlines()] == expected
