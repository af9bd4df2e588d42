"""Memory and CPU of the web page's server on the largest pictures it accepts, on loopback only.

Starts the real command (`python -m mnist_pipeline.web`) for models/model.tflite on a free port of
127.0.0.1 and prints: its resident memory idle after start; for one largest accepted picture at a
time (a 2000x2000 PNG drawing, a 2000x2000 JPEG photo), the server's CPU seconds and its peak
resident memory above idle; then, with CLIENTS clients sending the 2000x2000 PNG for SECONDS
seconds, failed requests, p50/p95 latency, the server's peak resident memory and its resident
memory SETTLE seconds after. Peaks are the server's RSS sampled every 50 ms (10 ms for a single
picture). Exits 1 if a target is missed: at most CPU_PER_PICTURE and MEMORY_PER_PICTURE for a
picture alone; the burst without a failure, at most BURST_PEAK, and back within SETTLED_WITHIN
of idle SETTLE seconds after. Bounded: fixed durations, at most 60 s per request.
Usage: `python -m benchmarks.web_memory` (after `make pipeline`).
"""

import argparse
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx2
import psutil

from benchmarks.web_load import machine, p50_p95, rss_mib, timed_reading
from mnist_pipeline.plumbing import paths
from tests.support.launch import Server, serving
from tests.support.pictures import colour_drawing, photo

ROOT = Path(__file__).resolve().parent.parent
CLIENTS = 16
SECONDS = 15
SETTLE = 5  # seconds after the burst before the resident memory is read again
TIMEOUT = 60  # seconds for any one request
# What a server for one person's drawings may cost: per picture, and under a burst.
CPU_PER_PICTURE = 1.0  # seconds
MEMORY_PER_PICTURE = 200  # MiB above the idle server
BURST_PEAK = 600  # MiB resident
SETTLED_WITHIN = 0.25  # of the idle server's resident memory, SETTLE seconds after the burst


class PeakMemory:
    """The largest resident memory of process `pid`, sampled every `interval` seconds in a thread
    while the `sampling()` block runs."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        self.process, self.interval, self.peak_mib = psutil.Process(pid), interval, 0.0

    @contextmanager
    def sampling(self) -> Iterator["PeakMemory"]:
        done = threading.Event()

        def sample() -> None:
            while True:
                self.peak_mib = max(self.peak_mib, self.process.memory_info().rss / 2**20)
                if done.wait(self.interval):
                    return

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            yield self
        finally:
            done.set()
            sampler.join()


def cpu_seconds(pid: int) -> float:
    """The user and system CPU seconds process `pid` has used so far."""
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def one_picture(
    client: httpx2.Client, pid: int, body: bytes, content_type: str
) -> tuple[float, float]:
    """Send one picture alone: the server's CPU seconds for it and its peak resident MiB."""
    before = cpu_seconds(pid)
    with PeakMemory(pid, interval=0.01).sampling() as memory:
        if timed_reading(client, body, content_type) is None:
            raise RuntimeError(f"the server did not read the {content_type} picture")
    return cpu_seconds(pid) - before, memory.peak_mib


def burst(url: str, body: bytes, clients: int, seconds: float) -> tuple[list[float], int]:
    """`clients` threads sending `body` one request after another for `seconds`: the latencies
    of the requests read and the number of those that were not."""
    end = time.monotonic() + seconds
    latencies: list[float] = []
    failures = 0
    lock = threading.Lock()

    def client_loop() -> None:
        nonlocal failures
        with httpx2.Client(base_url=url, timeout=TIMEOUT) as client:
            while time.monotonic() < end:
                latency = timed_reading(client, body)
                with lock:
                    if latency is None:
                        failures += 1
                    else:
                        latencies.append(latency)

    threads = [threading.Thread(target=client_loop) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, failures


@contextmanager
def settled_server() -> Iterator[tuple[Server, int, float]]:
    """The web server on the pipeline's model, once its start has settled: the server, its pid
    and its idle RSS in MiB (printed)."""
    with serving(ROOT / paths.SERVING_MODEL_FILE) as server:
        pid = server.process.pid
        time.sleep(1)  # whatever the start left to finish
        idle = rss_mib(pid)
        print(f"server RSS idle after start: {idle:.0f} MiB")
        yield server, pid, idle


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=CLIENTS)
    parser.add_argument("--seconds", type=float, default=SECONDS, help="how long the burst lasts")
    args = parser.parse_args()

    pictures = {
        "2000x2000 PNG drawing": (colour_drawing(), "image/png"),
        "2000x2000 JPEG photo": (photo((2000, 2000), quality=75), "image/jpeg"),
    }
    drawing = pictures["2000x2000 PNG drawing"][0]
    results: list[tuple[str, bool]] = []
    print(machine())
    with settled_server() as (server, pid, idle):
        with httpx2.Client(base_url=server.url, timeout=TIMEOUT) as client:
            for name, (body, content_type) in pictures.items():
                cpu, peak = one_picture(client, pid, body, content_type)
                print(
                    f"one {name} ({len(body):,} bytes): {cpu:.2f} s of CPU, "
                    f"peak {peak - idle:.0f} MiB above idle"
                )
                results.append((f"{name}: CPU", cpu <= CPU_PER_PICTURE))
                results.append((f"{name}: memory", peak - idle <= MEMORY_PER_PICTURE))
        cpu_before = cpu_seconds(pid)
        with PeakMemory(pid).sampling() as memory:
            latencies, failures = burst(server.url, drawing, args.clients, args.seconds)
        burst_cpu = cpu_seconds(pid) - cpu_before
        time.sleep(SETTLE)
        settled = rss_mib(pid)
    print(
        f"{args.clients} clients sending the PNG for {args.seconds:.0f} s: {len(latencies)} read, "
        f"{failures} failed, latency {p50_p95(latencies) if latencies else 'none'}, "
        f"{burst_cpu / max(len(latencies), 1):.2f} s of server CPU per picture"
    )
    print(
        f"server RSS: peak {memory.peak_mib:.0f} MiB during, {settled:.0f} MiB {SETTLE} s after "
        f"({settled / idle - 1:+.0%} of idle)"
    )
    results += [
        ("burst: no failure", failures == 0 and bool(latencies)),
        ("burst: peak", memory.peak_mib <= BURST_PEAK),
        ("burst: settled", settled <= idle * (1 + SETTLED_WITHIN)),
    ]
    missed = [name for name, met in results if not met]
    print("targets: " + (f"MISSED {', '.join(missed)}" if missed else "all met"))
    sys.exit(1 if missed else 0)


if __name__ == "__main__":
    main()
