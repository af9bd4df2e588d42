"""DVC remote storage for the end-to-end tests: moto's S3 server on 127.0.0.1, a bare git
`origin`, and clone A of the reproduced tiny project with an S3 remote committed (bucket folder
and endpoint; the key comes from the environment, as it would on a CI runner), pushed to origin.
"""

import hashlib
import json
import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
import yaml

from mnist_pipeline.s3_server import REGION, LocalS3
from tests.support.project import DVC, copy_project, output, run, stages_run

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
