"""What TensorFlow Serving's predict costs the web server on the worst bodies it is sent.

Starts the real command (`python -m mnist_pipeline.web`) for models/model.tflite on 127.0.0.1 and
sends, one at a time, the largest body accepted (1,000 digits at full float precision, 16 MB) and
the hostile ones that once cost hundreds of MiB or a 500: printed, for each, its status, the
server's CPU seconds and its peak resident memory above idle. Then it sends WORST four at once
and times /api/health meanwhile. Exits 1 if a target is missed: at most CPU_PER_BODY and
MEMORY_PER_BODY for any body, no 5xx, and /api/health within HEALTH_WITHIN throughout.
Usage: `python -m benchmarks.tf_serving_bounds` (after `make pipeline`).
"""

import json
import statistics
import sys
import threading
import time
from pathlib import Path

import httpx2
import numpy as np

from benchmarks.web_load import machine
from benchmarks.web_memory import PeakMemory, cpu_seconds, settled_server

ROOT = Path(__file__).resolve().parent.parent
PREDICT = "v1/models/mnist-mlp:predict"
TIMEOUT = 60  # seconds for any one request
CPU_PER_BODY = 1.0  # seconds
MEMORY_PER_BODY = 200  # MiB above the idle server
HEALTH_WITHIN = 0.1  # seconds, while four of the worst bodies are in flight

DIGITS = np.random.default_rng(0).random((1000, 784), dtype=np.float32)
BODIES = {
    "1,000 digits, full precision": json.dumps({"instances": DIGITS.tolist()}).encode(),
    "1,000 digits as 28x28": json.dumps(
        {"instances": DIGITS.reshape(-1, 28, 28).tolist()}
    ).encode(),
    "a 500,000-character string": json.dumps(
        {"instances": [["x" * 500_000], *[["y"]] * 999]}
    ).encode(),
    "6.6 million empty lists": b'{"instances": [' + b"[]," * 6_600_000 + b"[]]}",
    "1,001 nested lists": b'{"instances": ' + b"[" * 1001 + b"]" * 1001 + b"}",
    "a 5,000-digit integer": b'{"instances": [[' + b"9" * 5000 + b"]]}",
    "one list of 6.6 million zeros": b'{"instances": [[' + b"0," * 6_600_000 + b"0]]}",
}
WORST = "1,000 digits, full precision"  # the most work: every list parsed


def one_body(client: httpx2.Client, pid: int, body: bytes) -> tuple[int, float, float]:
    """Send `body` alone: its status, the server's CPU seconds for it and its peak RSS in MiB."""
    before = cpu_seconds(pid)
    with PeakMemory(pid, interval=0.01).sampling() as memory:
        status = client.post(PREDICT, content=body).status_code
    return status, cpu_seconds(pid) - before, memory.peak_mib


def health_during(url: str, body: bytes, bodies: int) -> tuple[list[float], list[int]]:
    """Send `bodies` copies of `body` at once, timing /api/health until all are answered: the
    health latencies, and the bodies' statuses."""
    statuses: list[int] = []
    lock = threading.Lock()

    def send() -> None:
        with httpx2.Client(base_url=url, timeout=TIMEOUT) as client:
            status = client.post(PREDICT, content=body).status_code
        with lock:
            statuses.append(status)

    senders = [threading.Thread(target=send) for _ in range(bodies)]
    for sender in senders:
        sender.start()
    latencies = []
    with httpx2.Client(base_url=url, timeout=TIMEOUT) as client:
        while any(sender.is_alive() for sender in senders):
            start = time.perf_counter()
            client.get("api/health").raise_for_status()
            latencies.append(time.perf_counter() - start)
            time.sleep(0.01)
    for sender in senders:
        sender.join()
    return latencies, statuses


def main() -> None:
    print(machine())
    missed = []
    with settled_server() as (server, pid, idle):
        with httpx2.Client(base_url=server.url, timeout=TIMEOUT) as client:
            for name, body in BODIES.items():
                status, cpu, peak = one_body(client, pid, body)
                print(
                    f"{name} ({len(body):,} bytes): {status}, {cpu:.2f} s of CPU, "
                    f"peak {peak - idle:.0f} MiB above idle"
                )
                if status >= 500 or cpu > CPU_PER_BODY or peak - idle > MEMORY_PER_BODY:
                    missed.append(name)
        with PeakMemory(pid).sampling() as memory:
            latencies, statuses = health_during(server.url, BODIES[WORST], 4)
    print(
        f"4 x {WORST} at once: {statuses}; /api/health {len(latencies)} times meanwhile, "
        f"median {1000 * statistics.median(latencies):.0f} ms, "
        f"p95 {1000 * statistics.quantiles(latencies, n=20)[-1]:.0f} ms, "
        f"slowest {1000 * max(latencies):.0f} ms; server peak {memory.peak_mib - idle:.0f} MiB "
        "above idle"
    )
    if max(latencies) > HEALTH_WITHIN or any(status >= 500 for status in statuses):
        missed.append("health while four are in flight")
    print("targets: " + (f"MISSED {', '.join(missed)}" if missed else "all met"))
    sys.exit(1 if missed else 0)


if __name__ == "__main__":
    main()
