"""The local S3 server: its key works and no other, it restarts with its contents, and its
command prints the `dvc remote` lines, refuses a taken port in one line and stops on a signal."""

import itertools
import shlex
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, EndpointConnectionError

from mnist_pipeline.plumbing.errors import PipelineError
from mnist_pipeline.s3_server import REGION, LocalS3
from tests.support.project import ROOT

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


def start_command(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "mnist_pipeline.s3_server", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_the_command_prints_remote_lines_that_work_and_stops_cleanly_on_a_signal(stop):
    command = start_command("--port", "0", "--bucket", "my-bucket")
    guard = threading.Timer(TIMEOUT, command.kill)  # bounds the reads below
    guard.start()
    try:
        # Up to the blank line that ends the instructions (or the command's exit).
        printed = itertools.takewhile(str.strip, iter(command.stdout.readline, ""))
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
