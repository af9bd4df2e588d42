"""A local S3-compatible server, to try DVC remote storage without a cloud account.

`python -m mnist_pipeline.s3_server` starts moto's S3 server on 127.0.0.1, creates a bucket and
a user whose key may use it (any other key is refused, as on real S3), prints the `dvc remote`
lines that point this repository at it (all `--local`: nothing lands in git), and serves until
Ctrl-C or SIGTERM. It keeps everything in memory: what was pushed is gone once it stops.

While it runs, those lines also wait in a file of the user cache that only this user may read,
and `python -m mnist_pipeline.s3_server --connect` runs them in the repository it is started in:
how a clone, a script or the docs' test points at the server without copying its new key.
"""

import argparse
import contextlib
import json
import logging
import re
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from mnist_pipeline.plumbing import cli, paths
from mnist_pipeline.plumbing.errors import PipelineError
from mnist_pipeline.plumbing.files import atomic_file
from mnist_pipeline.plumbing.net import listen, port_number

PROG = "s3_server"
REGION = "us-east-1"
DEFAULT_PORT = 9000
DEFAULT_BUCKET = "dvc-storage"
REMOTE_NAME = "local-s3"
# S3's rule for new buckets: 3-63 lowercase letters, digits, dots and hyphens, alphanumeric ends.
BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
START_TIMEOUT = 10.0  # seconds; moto's server is listening in well under one
PROVISIONING_REQUESTS = 4  # made by LocalS3._provision before keys are checked

# May do anything to S3, and nothing else.
S3_POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
    }
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Credentials:
    access_key_id: str
    secret_access_key: str


class LocalS3:
    """moto's S3 server on `host:port` (port 0: a free one) with one bucket and one user's key.

    `stop()` then `start()` again serves the same bucket, contents and key on the same port:
    moto keeps its state in this process, not in the server. Starting one turns on moto's
    signature checks for the whole process.
    """

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, bucket: str = DEFAULT_BUCKET
    ) -> None:
        self.host = host
        self.port = port
        self.bucket = bucket
        self.credentials: Credentials | None = None
        self._server = None

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> None:
        """Listen (a PipelineError if the address is taken); the first time, create the bucket
        and the key."""
        try:
            from moto.server import ThreadedMotoServer
        except ImportError:  # a dev dependency
            raise PipelineError(
                "moto is not installed: pip install -r requirements-dev.txt"
            ) from None

        listen(self.host, self.port).close()  # a taken port is one line, before moto tries
        server = ThreadedMotoServer(self.host, self.port, verbose=False)
        # start() waits without a timeout for a server thread that may have died binding the
        # address (its wait came with https://github.com/getmoto/moto/pull/7479): bound it.
        starting = threading.Thread(target=server.start, daemon=True)
        starting.start()
        starting.join(START_TIMEOUT)
        if starting.is_alive():
            with contextlib.suppress(Exception):  # it may still bind later: stop it now
                server.stop()
            raise PipelineError(f"the S3 server did not start listening on {self.endpoint_url}")
        self._server = server
        self.port = server.get_host_and_port()[1]
        if self.credentials is None:
            try:
                self.credentials = self._provision()
            except BaseException:
                self.stop()
                raise
        log.info("S3 server listening on %s, bucket %s", self.endpoint_url, self.bucket)

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> "LocalS3":
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _provision(self) -> Credentials:
        """Create a user allowed S3 and its key, and the bucket; then refuse any other key.

        moto checks signatures only after its first INITIAL_NO_AUTH_ACTION_COUNT requests
        (moto's docs, "IAM-like Access Control"): set that to exactly the requests made here.
        """
        import boto3
        from botocore.exceptions import BotoCoreError, ClientError

        post = urllib.request.Request(
            f"{self.endpoint_url}/moto-api/reset-auth",
            data=str(PROVISIONING_REQUESTS).encode(),
            headers={"Content-Type": "text/plain"},
        )
        with urllib.request.urlopen(post, timeout=START_TIMEOUT):
            pass
        anyone = {
            "endpoint_url": self.endpoint_url,
            "region_name": REGION,
            "aws_access_key_id": "provisioning",
            "aws_secret_access_key": "provisioning",
        }
        iam = boto3.client("iam", **anyone)
        user = f"dvc-{secrets.token_hex(4)}"
        try:  # PROVISIONING_REQUESTS requests
            iam.create_user(UserName=user)
            iam.put_user_policy(UserName=user, PolicyName="s3", PolicyDocument=S3_POLICY)
            key = iam.create_access_key(UserName=user)["AccessKey"]
            boto3.client("s3", **anyone).create_bucket(Bucket=self.bucket)
        except (BotoCoreError, ClientError) as error:
            raise PipelineError(f"cannot create bucket {self.bucket!r}: {error}") from None
        return Credentials(key["AccessKeyId"], key["SecretAccessKey"])

    def remote_commands(self, name: str = REMOTE_NAME) -> list[str]:
        """The `dvc remote` commands that make this server the default remote of a repository,
        all in its git-ignored .dvc/config.local."""
        if self.credentials is None:
            raise PipelineError("the S3 server has not been started")
        return [
            f"dvc remote add --local --default --force {name} s3://{self.bucket}",
            f"dvc remote modify --local {name} endpointurl {self.endpoint_url}",
            f"dvc remote modify --local {name} region {REGION}",
            f"dvc remote modify --local {name} access_key_id {self.credentials.access_key_id}",
            f"dvc remote modify --local {name} secret_access_key "
            f"{self.credentials.secret_access_key}",
        ]


def main(args: argparse.Namespace) -> None:
    if args.connect:
        connect(args.port)
        return
    # One log line per request is noise unless asked for.
    logging.getLogger("werkzeug").setLevel(logging.INFO if args.verbose else logging.WARNING)
    # Block the stop signals before any thread starts, so that every thread inherits the mask
    # and only sigwait below receives them.
    stop_signals = {signal.SIGINT, signal.SIGTERM}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)
    port = DEFAULT_PORT if args.port is None else args.port
    with LocalS3(args.host, port, args.bucket) as server, published(server):
        print("# Point this repository (and each clone) at the server:")
        for command in server.remote_commands():
            print(command)
        print("# or run them in it with: python -m mnist_pipeline.s3_server --connect")
        print("# Then: dvc push, dvc pull, dvc exp push origin NAME ... Ctrl-C stops the server.")
        print(flush=True)
        received = signal.sigwait(stop_signals)
        log.info("%s: stopping", signal.Signals(received).name)


def published_folder() -> Path:
    """Where running servers keep their `dvc remote` lines for --connect, one file each: a
    folder of the user cache that only this user may enter (the lines hold the key)."""
    return paths.user_cache_dir() / "s3-server"


@contextlib.contextmanager
def published(server: LocalS3) -> Iterator[None]:
    """Keep the server's `dvc remote` lines in its file of published_folder while the block
    runs."""
    folder = published_folder()
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    folder.chmod(0o700)
    path = folder / f"{server.host}-{server.port}.json"
    lines = {"host": server.host, "port": server.port, "bucket": server.bucket}
    with atomic_file(path, mode=0o600) as tmp:
        tmp.write_text(json.dumps({**lines, "commands": server.remote_commands()}))
    try:
        yield
    finally:
        path.unlink(missing_ok=True)


def running_servers() -> list[dict]:
    """The published lines of the servers that still answer (one killed leaves its file)."""
    found = []
    for path in sorted(published_folder().glob("*.json")):
        try:
            server = json.loads(path.read_text())
            socket.create_connection((server["host"], server["port"]), timeout=1).close()
        except (OSError, ValueError, KeyError, TypeError):  # cut short, not ours, or no answer
            continue
        found.append(server)
    return found


def connect(port: int | None) -> None:
    """Run, in the current repository, the `dvc remote` lines of the running server: the only
    one, or the one on `port`."""
    servers = [found for found in running_servers() if port in (None, found["port"])]
    if not servers:
        on = "" if port is None else f" on port {port}"
        raise PipelineError(
            f"no S3 server of this project is running{on}: start one with `make s3-server`"
        )
    if len(servers) > 1:
        ports = ", ".join(str(server["port"]) for server in servers)
        raise PipelineError(f"S3 servers are running on ports {ports}: name one with --port")
    (server,) = servers
    for command in server["commands"]:
        argv = shlex.split(command)
        # The `dvc` beside this Python: the one of this environment.
        argv[0] = str(Path(sys.executable).with_name("dvc"))
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            what = " ".join(argv[1:6])  # up to the setting's name: never the key
            raise PipelineError(f"dvc {what}: {' '.join(done.stderr.split())}")
    print(
        f"remote {REMOTE_NAME} (bucket {server['bucket']} on "
        f"http://{server['host']}:{server['port']}) is this repository's default, in "
        ".dvc/config.local"
    )


def bucket_name(text: str) -> str:
    if not BUCKET_NAME.fullmatch(text):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a bucket name (3-63 of a-z, 0-9, '.', '-'; alphanumeric ends)"
        )
    return text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Serve an in-memory S3 bucket on this machine for DVC remote storage, "
        "and print the `dvc remote` commands that use it.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument(
        "--port",
        type=port_number,
        help=f"port to listen on (default {DEFAULT_PORT}; 0: any free one); with --connect, the "
        "server's, where several run",
    )
    parser.add_argument(
        "--bucket", type=bucket_name, default=DEFAULT_BUCKET, help="name of the bucket to create"
    )
    parser.add_argument(
        "--connect",
        action="store_true",
        help="start no server: make the one running this repository's default remote (its "
        "`dvc remote` lines, run here)",
    )
    return parser


if __name__ == "__main__":
    cli.run(main, build_parser())
