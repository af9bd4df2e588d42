"""End to end, the loop of docs/collecting.md on the tiny project: drawings added with
`predict --label --save` and through the page in a real browser, the stages that read them rerun
and nothing else, the field set scored, and the collection learnt from with
`dvc exp run -S train.drawings=N`."""

import json
import shutil
import sys

import numpy as np
import pytest
import yaml

from mnist_pipeline.plumbing import paths
from tests.support.browser import page_on
from tests.support.launch import serving
from tests.support.project import DVC, output, run, stages_run
from tests.support.recount import check_field_reports
from tests.support.webpage import ONE, draw_and_read, file_with, name_of

pytestmark = pytest.mark.e2e

PER_DIGIT = 6


def drawings_unlike_mnist(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Noisy 28x28 digits whose class is a bright *vertical* band: the tiny MNIST's is horizontal
    (tests/support/synthetic.py), so a model that never saw these misreads most of them."""
    rng = np.random.default_rng(seed)
    labels = np.arange(count, dtype=np.uint8) % 10
    images = rng.integers(0, 40, size=(count, 28, 28), dtype=np.uint8)
    for image, label in zip(images, labels, strict=True):
        image[4:24, 2 + 2 * label : 4 + 2 * label] = 255
    return images, labels


def lock_md5(repo, path) -> str:
    """The md5 dvc.lock records for the output `path`."""
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    outs = [out for stage in lock["stages"].values() for out in stage.get("outs", [])]
    return next(out["md5"] for out in outs if out["path"] == str(path))


def test_drawings_rerun_what_reads_them_are_scored_and_can_be_learnt_from(
    reproduced_project, tmp_path, browser
):
    repo = reproduced_project
    # A project without drawings: the template holds whatever the repository's collection was.
    shutil.rmtree(repo / paths.DRAWINGS_DIR)
    (repo / paths.DRAWINGS_DIR).mkdir()
    output(repo, DVC, "repro")
    run(repo, "git", "add", "-A")
    run(repo, "git", "commit", "-qm", "no drawings", "--allow-empty")
    model_md5 = lock_md5(repo, paths.MODEL_FILE)
    assert check_field_reports(repo) == {"count": 0}
    # Hidden files are no drawings (.dvcignore): a Finder's, a killed save's temporary.
    (repo / paths.DRAWINGS_DIR / ".DS_Store").write_bytes(b"\0")
    (repo / paths.DRAWINGS_DIR / "3").mkdir()
    (repo / paths.DRAWINGS_DIR / "3" / ".0123456789abcdef.png.tmp-x1.png").write_bytes(b"\0")
    assert json.loads(output(repo, DVC, "status", "--json")) == {}

    images, labels = drawings_unlike_mnist(10 * PER_DIGIT, seed=5)
    for digit in range(10):
        files = []
        for number in np.flatnonzero(labels == digit):
            files.append(tmp_path / f"{number:02}.npy")
            np.save(files[-1], images[number])
        saved = output(repo, sys.executable, "-m", "mnist_pipeline.predict", "--label",
                       str(digit), "--save", str(paths.DRAWINGS_DIR), *map(str, files))  # fmt: skip
        assert saved.count(": added as drawings/") == PER_DIGIT, saved
    # And one drawn on the project's page in Chromium, then given its digit: a vertical stroke,
    # centred, is what these drawings' 6 looks like (its band in columns 14-15).
    collecting = ["--collect", str(repo / paths.DRAWINGS_DIR)]
    with (
        serving(repo / paths.SERVING_MODEL_FILE, options=collecting) as server,
        page_on(browser, server) as page,
    ):
        _, answer = draw_and_read(page, ONE)
        drawn = f"6/{name_of(answer['input'])}"
        assert file_with(page, "It is a 6") == f"Saved as a 6: {drawn}"
    assert (repo / paths.DRAWINGS_DIR / drawn).is_file()
    assert len(list((repo / paths.DRAWINGS_DIR).rglob("[!.]*.png"))) == 10 * PER_DIGIT + 1

    # Only the stage that reads the collection is stale; once it reruns, evaluate follows, and
    # train does not: its part of the collection has no rows while train.drawings is 0.
    assert json.loads(output(repo, DVC, "status", "--json")) == {
        "preprocess": [{"changed deps": {str(paths.DRAWINGS_DIR): "modified"}}]
    }
    assert stages_run(output(repo, DVC, "repro")) == ["preprocess", "evaluate"]
    assert lock_md5(repo, paths.MODEL_FILE) == model_md5  # the model of the project without
    field = check_field_reports(repo)
    assert 0 < field["count"] < 10 * PER_DIGIT  # about one in five, held out by hash
    shown = json.loads(output(repo, DVC, "metrics", "show", "--json"))
    assert shown[""]["data"][str(paths.METRICS_FILE)]["data"]["field"] == field
    run(repo, "git", "add", "-A")
    run(repo, "git", "commit", "-qm", "drawings")

    # Learnt from: train reruns on MNIST and the training part, and the field accuracy moves.
    ran = output(repo, DVC, "exp", "run", "-S", "train.drawings=20")
    assert stages_run(ran) == ["preprocess", "train", "evaluate"]
    learnt = check_field_reports(repo)
    assert learnt["count"] == field["count"]
    assert learnt["accuracy"] > field["accuracy"]
    diff = json.loads(output(repo, DVC, "metrics", "diff", "--all", "--json"))
    changes = diff[str(paths.METRICS_FILE)]
    assert changes["field.accuracy"] == {
        "old": field["accuracy"],
        "new": learnt["accuracy"],
        "diff": pytest.approx(learnt["accuracy"] - field["accuracy"]),
    }
    assert {"test.accuracy", "field.count"} <= changes.keys()  # MNIST's score beside it
    assert lock_md5(repo, paths.MODEL_FILE) != model_md5
