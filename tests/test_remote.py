"""DVC remote storage on a real S3 server (moto's, on 127.0.0.1), between clones of a bare git
repository: push and pull, experiments shared with `dvc exp push/pull`, and failures (server
down, wrong key) that leave workspace and cache as they were.

Clone A is a copy of the reproduced tiny project with an S3 remote committed (bucket folder
and endpoint; the key comes from the environment, as it would on a CI runner), pushed to
`origin`. Tests that change A change their own copy of it.
"""

import contextlib
import hashlib
import itertools
import json
import logging
import shlex
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import numpy as np
import pytest
import yaml
from project import DVC, ROOT, copy_project, output, run, stages_run

from mnist_pipeline.s3_server import REGION, LocalS3

pytestmark = pytest.mark.e2e

TIMEOUT = 300  # seconds, for any one command
NO_FILE = "/nonexistent/aws"  # hides ~/.aws (botocore refuses /dev/null: not a regular file)


@pytest.fixture(scope="module")
def s3() -> Iterator[LocalS3]:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # not a line per request
    with LocalS3() as server:
        yield server


def aws_env(server: LocalS3 | None = None, secret: str | None = None) -> dict[str, str]:
    """Environment for `dvc`: the server's key (or `secret` instead of its own), and nothing
    from this machine's AWS setup."""
    env = {
        "AWS_MAX_ATTEMPTS": "1",  # botocore's retries, with back-off: fail fast when down
        "AWS_EC2_METADATA_DISABLED": "true",  # never ask the cloud's metadata address for a key
        "AWS_CONFIG_FILE": NO_FILE,
        "AWS_SHARED_CREDENTIALS_FILE": NO_FILE,
    }
    if server is not None:
        env["AWS_ACCESS_KEY_ID"] = server.credentials.access_key_id
        env["AWS_SECRET_ACCESS_KEY"] = secret or server.credentials.secret_access_key
    return env


def bucket_keys(server: LocalS3, folder: str) -> set[str]:
    """Every object under `folder` of the bucket, relative to it."""
    client = boto3.client(
        "s3",
        endpoint_url=server.endpoint_url,
        region_name=REGION,
        aws_access_key_id=server.credentials.access_key_id,
        aws_secret_access_key=server.credentials.secret_access_key,
    )
    pages = client.get_paginator("list_objects_v2").paginate(
        Bucket=server.bucket, Prefix=f"{folder}/"
    )
    return {item["Key"][len(folder) + 1 :] for page in pages for item in page.get("Contents", [])}


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def lock_outputs(repo: Path) -> dict[str, str]:
    """Each output's path and md5 in dvc.lock."""
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    return {out["path"]: out["md5"] for stage in lock["stages"].values() for out in stage["outs"]}


def cache_file(repo: Path, md5sum: str) -> Path:
    return repo / ".dvc/cache/files/md5" / md5sum[:2] / md5sum[2:]


def check_outputs(repo: Path) -> None:
    """Every output in the workspace has the md5 that dvc.lock names (a folder: each of its files
    has the md5 that the folder's listing names, and the listing has the folder's md5)."""
    for path, md5sum in lock_outputs(repo).items():
        target = repo / path
        if not md5sum.endswith(".dir"):
            assert md5(target) == md5sum, path
            continue
        listing_file = cache_file(repo, md5sum)
        assert md5(listing_file) == md5sum.removesuffix(".dir"), path
        listing = {entry["relpath"]: entry["md5"] for entry in json.loads(listing_file.read_text())}
        files = {p.relative_to(target).as_posix(): md5(p) for p in target.rglob("*") if p.is_file()}
        assert files == listing, path


def remote_objects(repo: Path) -> set[str]:
    """The objects that `dvc push` sends for the workspace's outputs, as paths in the remote."""
    stages = yaml.safe_load((repo / "dvc.yaml").read_text())["stages"]
    # A plain path in dvc.yaml's outs is cached; the others say `cache: false`.
    cached = {out for stage in stages.values() for out in stage["outs"] if isinstance(out, str)}
    objects = set()
    for path, md5sum in lock_outputs(repo).items():
        if path in cached:
            objects.add(md5sum)
        if path in cached and md5sum.endswith(".dir"):
            objects.update(
                entry["md5"] for entry in json.loads(cache_file(repo, md5sum).read_text())
            )
    return {f"files/md5/{md5sum[:2]}/{md5sum[2:]}" for md5sum in objects}


def snapshot(repo: Path) -> dict[str, str]:
    """md5 of every file of the workspace and of the DVC cache (not of git's or DVC's state)."""
    return {
        p.relative_to(repo).as_posix(): md5(p)
        for p in repo.rglob("*")
        if p.is_file() and not p.relative_to(repo).as_posix().startswith((".git/", ".dvc/tmp/"))
    }


def clone(origin: Path, folder: Path) -> Path:
    run(folder.parent, "git", "clone", "-q", str(origin), folder.name)
    return folder


@dataclass(frozen=True)
class Shared:
    origin: Path  # the bare git repository
    a: Path  # clone A, after `dvc repro` and `dvc push`: read-only for the tests
    folder: str  # A's folder in the bucket


@pytest.fixture(scope="module")
def shared(s3, reproduced_template, tmp_path_factory) -> Shared:
    root = tmp_path_factory.mktemp("remote")
    origin = root / "origin.git"
    run(root, "git", "init", "-q", "--bare", "-b", "main", str(origin))
    a = copy_project(reproduced_template, root / "a")
    folder = f"project-{uuid.uuid4().hex}"
    run(a, DVC, "remote", "add", "--default", "storage", f"s3://{s3.bucket}/{folder}")
    run(a, DVC, "remote", "modify", "storage", "endpointurl", s3.endpoint_url)
    run(a, DVC, "remote", "modify", "storage", "region", REGION)
    run(a, "git", "commit", "-qam", "S3 remote")
    run(a, "git", "remote", "add", "origin", str(origin))
    run(a, "git", "push", "-q", "origin", "main")
    assert stages_run(output(a, DVC, "repro")) == []
    run(a, DVC, "push", env=aws_env(s3), timeout=TIMEOUT)
    return Shared(origin, a, folder)


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
