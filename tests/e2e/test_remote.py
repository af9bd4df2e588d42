"""DVC remote storage on a real S3 server (moto's, on 127.0.0.1), between clones of a bare git
repository: push and pull, experiments shared with `dvc exp push/pull`, and failures (server
down, wrong key) that leave workspace and cache as they were.

Clone A (tests/support/remote.py) is pushed to `origin` and its outputs to the bucket. Tests that
change A change their own copy of it.
"""

import contextlib
import itertools
import json
import shlex
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator

import numpy as np
import pytest

from mnist_pipeline.s3_server import LocalS3
from tests.support.project import DVC, ROOT, copy_project, output, run, stages_run
from tests.support.remote import (
    TIMEOUT,
    aws_env,
    bucket_keys,
    check_outputs,
    clone,
    lock_outputs,
    md5,
    remote_objects,
    snapshot,
)

pytestmark = pytest.mark.e2e


def test_push_sends_every_output_to_the_bucket(s3, shared):
    expected = remote_objects(shared.a)
    assert any(name.endswith(".dir") for name in expected)  # the data folders, listing and files
    assert expected <= bucket_keys(s3, shared.folder)


def test_a_fresh_clone_pulls_everything_and_trains_nothing(s3, shared, tmp_path, tiny_mnist):
    b = clone(shared.origin, tmp_path / "b")
    run(b, DVC, "pull", env=aws_env(s3), timeout=TIMEOUT)
    check_outputs(b)
    assert "Data and pipelines are up to date" in output(b, DVC, "status")
    assert stages_run(output(b, DVC, "repro")) == []
    # The pulled model reads digits as the evaluate stage (run in A) did.
    digits = []
    for index, image in enumerate(tiny_mnist["x_test"][:10]):
        np.save(tmp_path / f"{index}.npy", image)
        digits.append(str(tmp_path / f"{index}.npy"))
    readings = json.loads(
        run(b, sys.executable, "-m", "mnist_pipeline.predict", "--json", *digits).stdout
    )
    evaluated = (b / "reports/evaluate/predictions.csv").read_text().splitlines()[1:11]
    assert [str(reading["digit"]) for reading in readings] == [
        line.split(",")[1] for line in evaluated
    ]


def test_an_experiment_pushed_from_one_clone_is_pulled_and_applied_in_another(s3, shared, tmp_path):
    a = copy_project(shared.a, tmp_path / "a")
    run(a, DVC, "exp", "run", "-n", "faster", "-S", "train.learning_rate=0.002", timeout=TIMEOUT)
    metrics = json.loads((a / "reports/metrics.json").read_text())
    model = lock_outputs(a)["models/model.keras"]
    run(a, DVC, "exp", "push", "origin", "faster", env=aws_env(s3), timeout=TIMEOUT)

    b = clone(shared.origin, tmp_path / "b")
    run(b, DVC, "pull", env=aws_env(s3), timeout=TIMEOUT)
    run(b, DVC, "exp", "pull", "origin", "faster", env=aws_env(s3), timeout=TIMEOUT)
    [shown] = [
        experiment
        for baseline in json.loads(output(b, DVC, "exp", "show", "--json"))
        for branch in baseline.get("experiments") or []
        for experiment in branch["revs"]
        if experiment["name"] == "faster"
    ]
    params = shown["data"]["params"]["params.yaml"]["data"]
    assert params["train"]["learning_rate"] == 0.002
    assert shown["data"]["metrics"]["reports/metrics.json"]["data"] == metrics

    assert md5(b / "models/model.keras") != model  # still the baseline's
    run(b, DVC, "exp", "apply", "faster")
    assert md5(b / "models/model.keras") == model
    assert json.loads((b / "reports/metrics.json").read_text()) == metrics
    assert stages_run(output(b, DVC, "repro")) == []


@contextlib.contextmanager
def server_down(server: LocalS3) -> Iterator[dict[str, str]]:
    server.stop()
    try:
        yield aws_env(server)
    finally:
        server.start()


@contextlib.contextmanager
def wrong_key(server: LocalS3) -> Iterator[dict[str, str]]:
    yield aws_env(server, secret="not-the-secret-key")


# Each fault, and what DVC's message says about it.
FAULTS = {
    "server down": (server_down, "Could not connect to the endpoint URL"),
    "wrong key": (wrong_key, "Forbidden"),
}


@pytest.mark.parametrize("fault", FAULTS)
def test_a_failed_push_changes_nothing_and_the_same_push_completes_once_fixed(
    s3, shared, tmp_path, fault
):
    a = copy_project(shared.a, tmp_path / "a")
    folder = f"push-{uuid.uuid4().hex}"  # empty: everything is to push
    run(a, DVC, "remote", "modify", "--local", "storage", "url", f"s3://{s3.bucket}/{folder}")
    before = snapshot(a)
    cause, message = FAULTS[fault]
    with cause(s3) as env:
        failed = run(a, DVC, "push", check=False, env=env, timeout=TIMEOUT)
    assert failed.returncode != 0
    assert message in failed.stderr and "Traceback" not in failed.stderr
    assert snapshot(a) == before
    assert bucket_keys(s3, folder) == set()

    run(a, DVC, "push", env=aws_env(s3), timeout=TIMEOUT)
    assert remote_objects(a) <= bucket_keys(s3, folder)


@pytest.mark.parametrize("fault", FAULTS)
def test_a_failed_pull_changes_nothing_and_the_same_pull_completes_once_fixed(
    s3, shared, tmp_path, fault
):
    b = clone(shared.origin, tmp_path / "b")
    before = snapshot(b)
    cause, message = FAULTS[fault]
    with cause(s3) as env:
        failed = run(b, DVC, "pull", check=False, env=env, timeout=TIMEOUT)
    assert failed.returncode != 0
    assert message in failed.stderr and "Traceback" not in failed.stderr
    assert snapshot(b) == before

    run(b, DVC, "pull", env=aws_env(s3), timeout=TIMEOUT)
    check_outputs(b)


def test_the_lines_the_server_prints_share_a_project_between_clones(reproduced_template, tmp_path):
    """docs/sharing.md's walkthrough: start the server, run the lines it prints in one clone and
    push, run them in another and pull; nothing of it lands in git."""
    server = subprocess.Popen(
        [sys.executable, "-m", "mnist_pipeline.s3_server", "--port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    guard = threading.Timer(TIMEOUT, server.kill)  # bounds the reads below
    guard.start()
    try:
        # Up to the blank line that ends the server's instructions (or its exit).
        lines = itertools.takewhile(str.strip, iter(server.stdout.readline, ""))
        commands = [shlex.split(line) for line in lines if line.startswith("dvc ")]
        assert commands, server.stderr.read()

        origin = tmp_path / "origin.git"
        run(tmp_path, "git", "init", "-q", "--bare", "-b", "main", str(origin))
        a = copy_project(reproduced_template, tmp_path / "a")
        run(a, "git", "remote", "add", "origin", str(origin))
        run(a, "git", "push", "-q", "origin", "main")
        b = clone(origin, tmp_path / "b")
        for repo in (a, b):
            for command in commands:
                run(repo, DVC, *command[1:])
        run(a, DVC, "push", env=aws_env(), timeout=TIMEOUT)
        run(b, DVC, "pull", env=aws_env(), timeout=TIMEOUT)
        check_outputs(b)
        assert stages_run(output(b, DVC, "repro")) == []
        for repo in (a, b):
            assert run(repo, "git", "status", "--porcelain").stdout == ""
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(TIMEOUT)
        guard.cancel()
