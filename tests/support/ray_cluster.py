"""A real Ray cluster on loopback for the sweep's tests: a head node and a second node, each a
`ray start --block` process with its own short temporary folder and one CPU, both stopped (every
process they started with them) when the test ends, however it ends."""

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

RAY = str(Path(sys.executable).parent / "ray")
START_SECONDS = 120  # for both nodes to join, on a loaded machine
STOP_SECONDS = 30
# Ray's agents and servers each take a port: the fixed defaults would collide between the two
# nodes (and with anything else on this machine), so each gets a free one.
NODE_PORTS = (
    "--dashboard-agent-listen-port",
    "--dashboard-agent-grpc-port",
    "--metrics-export-port",
    "--runtime-env-agent-port",
)
HEAD_PORTS = ("--ray-client-server-port", "--dashboard-port", *NODE_PORTS)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def short_temp_dir() -> Path:
    """A folder under /tmp with a short name: Ray's unix sockets live there, and their paths
    must fit in 107 characters (pytest's tmp_path is too long)."""
    return Path(tempfile.mkdtemp(prefix="rs", dir="/tmp"))


def ray_env(temp_dir: Path) -> dict[str, str]:
    """What every Ray process of a test runs with: token authentication with a token of its
    own (in the environment, not ~/.ray), no usage reports, and a dead worker's children
    killed (docs/sweeps.md)."""
    return {
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN": secrets.token_hex(16),
        "RAY_USAGE_STATS_ENABLED": "0",
        "RAY_TMPDIR": str(temp_dir),
        "RAY_kill_child_processes_on_worker_exit_with_raylet_subreaper": "true",
    }


@dataclass
class Cluster:
    address: str
    env: dict[str, str]
    nodes: list[subprocess.Popen]

    def pids(self) -> set[int]:
        """Every process of the cluster now: the two `ray start`s and all they started."""
        pids = set()
        for node in self.nodes:
            with contextlib.suppress(psutil.NoSuchProcess):
                pids |= {node.pid} | {
                    child.pid for child in psutil.Process(node.pid).children(True)
                }
        return pids


def start_node(arguments: list[str], ports: tuple[str, ...], env: dict, temp: Path, log: Path):
    command = [RAY, "start", "--block", "--node-ip-address", "127.0.0.1", "--num-cpus", "1",
               "--temp-dir", str(temp), "--disable-usage-stats", *arguments]  # fmt: skip
    for option in ports:
        command += [option, str(free_port())]
    with log.open("w") as out:
        return subprocess.Popen(
            command, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT
        )


def node_count(cluster: Cluster) -> int:
    """How many nodes the cluster's GCS knows alive (0 until it answers)."""
    script = (
        f"import ray; ray.init(address={cluster.address!r}, logging_level='ERROR'); "
        "print(sum(node['Alive'] for node in ray.nodes()))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, **cluster.env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    return int(result.stdout.split()[-1]) if result.returncode == 0 else 0


def stop(cluster: Cluster) -> None:
    """SIGTERM to each `ray start --block` (it stops what it started), then SIGKILL to any
    process of the cluster still there."""
    pids = cluster.pids()
    for node in reversed(cluster.nodes):
        node.send_signal(signal.SIGTERM)
    for node in cluster.nodes:
        try:
            node.wait(STOP_SECONDS)
        except subprocess.TimeoutExpired:
            node.kill()
            node.wait()
    for pid in pids:
        with contextlib.suppress(psutil.NoSuchProcess):
            psutil.Process(pid).kill()


@contextlib.contextmanager
def running_cluster(logs: Path, extra_env: dict[str, str] | None = None) -> Iterator[Cluster]:
    """The two nodes, up, with `extra_env` in every Ray process's environment (a trial's too:
    Ray's workers inherit their node's, not the driver's)."""
    head_temp, node_temp = short_temp_dir(), short_temp_dir()
    env = {**ray_env(head_temp), **(extra_env or {})}
    port = free_port()
    cluster = Cluster(f"127.0.0.1:{port}", env, [])
    try:
        cluster.nodes.append(start_node(
            ["--head", "--port", str(port), "--include-dashboard", "false"], HEAD_PORTS,
            env, head_temp, logs / "head.log",
        ))  # fmt: skip
        cluster.nodes.append(start_node(
            ["--address", cluster.address], NODE_PORTS, env, node_temp, logs / "node.log"
        ))  # fmt: skip
        deadline = time.monotonic() + START_SECONDS
        while node_count(cluster) < 2:
            text = (logs / "head.log").read_text() + (logs / "node.log").read_text()
            assert time.monotonic() < deadline, f"the cluster did not start:\n{text}"
            assert all(node.poll() is None for node in cluster.nodes), text
            time.sleep(1)
        yield cluster
    finally:
        stop(cluster)
        for folder in (head_temp, node_temp):
            shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def ray_cluster(tmp_path) -> Iterator[Cluster]:
    with running_cluster(tmp_path) as cluster:
        yield cluster
