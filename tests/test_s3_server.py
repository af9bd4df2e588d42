"""The local S3 server: its key works and no other, it restarts with its contents, and its
command prints the `dvc remote` lines, refuses a taken port in one line and stops on a signal."""

import itertools
import os
import shlex
import signal
import socket
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, EndpointConnectionError

from mnist_pipeline.plumbing import paths
from mnist_pipeline.plumbing.errors import PipelineError
from mnist_pipeline.s3_server import REGION, LocalS3
from tests.support.project import DVC, ENV, ROOT, run

TIMEOUT = 60  # seconds, for the server command to start or stop


def s3_client(server: LocalS3, key_id: str, secret: str):
    return boto3.client(
        "s3",
        endpoint_url=server.endpoint_url,
        region_name=REGION,
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        config=Config(retries={"max_attempts": 1}),
    )


@pytest.fixture
def server() -> Iterator[LocalS3]:
    with LocalS3() as running:
        yield running


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield listener.getsockname()[1]


def test_its_key_writes_and_reads_the_bucket_across_a_restart(server):
    key = server.credentials
    client = s3_client(server, key.access_key_id, key.secret_access_key)
    client.put_object(Bucket=server.bucket, Key="folder/object", Body=b"contents")
    port = server.port
    server.stop()
    with pytest.raises(EndpointConnectionError):
        client.head_object(Bucket=server.bucket, Key="folder/object")
    server.start()
    assert server.port == port and server.credentials == key
    assert (
        client.get_object(Bucket=server.bucket, Key="folder/object")["Body"].read() == b"contents"
    )


@pytest.mark.parametrize(
    ("key_id", "secret", "code"),
    [
        (None, "not-the-secret-key", "SignatureDoesNotMatch"),
        ("AKIAUNKNOWNKEY000000", None, "InvalidAccessKeyId"),
    ],
)
def test_any_other_key_is_refused(server, key_id, secret, code):
    key = server.credentials
    client = s3_client(server, key_id or key.access_key_id, secret or key.secret_access_key)
    with pytest.raises(ClientError) as refused:
        client.list_objects_v2(Bucket=server.bucket)
    assert refused.value.response["Error"]["Code"] == code


def test_a_taken_port_is_an_error_naming_the_address(taken_port):
    with pytest.raises(PipelineError, match=f"cannot listen on 127.0.0.1:{taken_port}: "):
        LocalS3(port=taken_port).start()


@pytest.fixture(autouse=True)
def user_cache(tmp_path, monkeypatch) -> Path:
    """The user cache, where a running server keeps its lines for --connect: the test's own."""
    cache = tmp_path / "cache"
    monkeypatch.setenv(paths.CACHE_ENV, str(cache))
    return cache


def start_command(*args: str, cwd: Path = ROOT) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "mnist_pipeline.s3_server", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def instructions(command: subprocess.Popen) -> list[str]:
    """What the server command prints up to the blank line that ends its instructions."""
    return list(itertools.takewhile(str.strip, iter(command.stdout.readline, "")))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def repo(tmp_path) -> Path:
    folder = tmp_path / "repo"
    folder.mkdir()
    run(folder, "git", "init", "-q")
    run(folder, DVC, "init", "-q")
    return folder


def connect(repo: Path, *args: str) -> subprocess.CompletedProcess:
    return run(
        repo, sys.executable, "-m", "mnist_pipeline.s3_server", "--connect", *args,
        check=False, env={**ENV, paths.CACHE_ENV: os.environ[paths.CACHE_ENV]},
    )  # fmt: skip


def test_connect_points_a_repository_at_the_running_server_and_pushes_there(repo, user_cache):
    port = free_port()
    command = start_command("--port", str(port), "--bucket", "my-bucket")
    guard = threading.Timer(TIMEOUT, command.kill)
    guard.start()
    try:
        printed = instructions(command)
        # The lines wait where only this user may read them (they hold the key).
        published = user_cache / "s3-server" / f"127.0.0.1-{port}.json"
        assert stat.S_IMODE(published.parent.stat().st_mode) == 0o700
        assert stat.S_IMODE(published.stat().st_mode) == 0o600
        assert "python -m mnist_pipeline.s3_server --connect" in printed[-2]
        done = connect(repo)
        assert done.returncode == 0, done.stderr
        assert done.stdout == (
            f"remote local-s3 (bucket my-bucket on http://127.0.0.1:{port}) is this "
            "repository's default, in .dvc/config.local\n"
        )
        (repo / "drawing.txt").write_text("pushed through --connect\n")
        run(repo, DVC, "add", "-q", "drawing.txt")
        run(repo, DVC, "push", "-q")
        keys = {line.split()[-2]: line.split()[-1] for line in printed if " modify " in line}
        client = boto3.client(
            "s3",
            endpoint_url=keys["endpointurl"],
            region_name=REGION,
            aws_access_key_id=keys["access_key_id"],
            aws_secret_access_key=keys["secret_access_key"],
        )
        assert client.list_objects_v2(Bucket="my-bucket")["KeyCount"] == 1
    finally:
        command.send_signal(signal.SIGTERM)
        command.communicate(timeout=TIMEOUT)
        guard.cancel()
    assert not published.exists()  # gone with the server
    refused = connect(repo, "--port", str(port))
    assert (refused.returncode, refused.stderr) == (
        1,
        f"s3_server: error: no S3 server of this project is running on port {port}: start one "
        "with `make s3-server`\n",
    )


def test_connect_after_a_killed_server_says_none_is_running(repo, user_cache):
    port = free_port()
    command = start_command("--port", str(port))
    instructions(command)
    command.kill()  # no chance to remove its lines
    command.communicate(timeout=TIMEOUT)
    assert (user_cache / "s3-server" / f"127.0.0.1-{port}.json").exists()
    refused = connect(repo, "--port", str(port))
    assert refused.returncode == 1 and refused.stderr.count("\n") == 1
    assert "no S3 server of this project is running on port" in refused.stderr
    assert not (repo / ".dvc" / "config.local").exists()


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_the_command_prints_remote_lines_that_work_and_stops_cleanly_on_a_signal(stop):
    command = start_command("--port", "0", "--bucket", "my-bucket")
    guard = threading.Timer(TIMEOUT, command.kill)  # bounds the reads below
    guard.start()
    try:
        printed = instructions(command)
        lines = [shlex.split(line) for line in printed if line.startswith("dvc ")]
        settings = {line[-2]: line[-1] for line in lines[1:]}
        client = boto3.client(
            "s3",
            endpoint_url=settings["endpointurl"],
            region_name=settings["region"],
            aws_access_key_id=settings["access_key_id"],
            aws_secret_access_key=settings["secret_access_key"],
        )
        assert client.list_objects_v2(Bucket="my-bucket")["KeyCount"] == 0
    finally:
        command.send_signal(stop)
        _, stderr = command.communicate(timeout=TIMEOUT)
        guard.cancel()
    assert lines[0] == ["dvc", "remote", "add", "--local", "--default", "--force", "local-s3",
                        "s3://my-bucket"]  # fmt: skip
    assert all(line[:4] == ["dvc", "remote", "modify", "--local"] for line in lines[1:])
    assert set(settings) == {"endpointurl", "region", "access_key_id", "secret_access_key"}
    assert command.returncode == 0, stderr
    assert f"{stop.name}: stopping" in stderr and "Traceback" not in stderr
    host, port = settings["endpointurl"].removeprefix("http://").split(":")
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((host, int(port)), timeout=TIMEOUT).close()


def test_the_command_on_a_taken_port_fails_with_one_line(taken_port):
    command = start_command("--port", str(taken_port))
    _, stderr = command.communicate(timeout=TIMEOUT)
    assert command.returncode == 1
    assert stderr == f"s3_server: error: cannot listen on 127.0.0.1:{taken_port}: " + (
        "Address already in use\n"
    )


def test_connect_with_two_servers_running_asks_which_and_takes_the_one_named(repo):
    ports = sorted([free_port(), free_port()])
    commands = [start_command("--port", str(port)) for port in ports]
    try:
        for command in commands:
            instructions(command)
        both = connect(repo)
        assert (both.returncode, both.stderr) == (
            1,
            f"s3_server: error: S3 servers are running on ports {ports[0]}, {ports[1]}: name one "
            "with --port\n",
        )
        assert connect(repo, "--port", str(ports[1])).returncode == 0
        endpoint = run(repo, DVC, "config", "--local", "remote.local-s3.endpointurl").stdout.strip()
    finally:
        for command in commands:
            command.send_signal(signal.SIGTERM)
            command.communicate(timeout=TIMEOUT)
    assert endpoint == f"http://127.0.0.1:{ports[1]}"


def test_connect_passes_over_a_damaged_file_of_lines(repo, user_cache):
    (user_cache / "s3-server").mkdir(parents=True)
    (user_cache / "s3-server" / "127.0.0.1-9.json").write_text('{"host": "127.0')
    refused = connect(repo)
    assert (refused.returncode, refused.stderr) == (
        1,
        "s3_server: error: no S3 server of this project is running: start one with "
        "`make s3-server`\n",
    )
