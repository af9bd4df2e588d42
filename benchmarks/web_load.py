"""Load check of the web page's server: many drawings from concurrent clients, on loopback only.

Starts the real command (`python -m mnist_pipeline.web`) for models/model.tflite on a free port
of 127.0.0.1, sends real MNIST test digits drawn as the page draws them (dark on white, 280x280
PNG) from several clients at once, and prints throughput, p50/p95 latency, failed requests and
the server's resident memory after a warm-up, halfway and at the end (flat: no leak per request);
then the latency of a single client alone. Bounded: a fixed number of requests and a deadline.
Usage: `make bench-web` or `python -m benchmarks.web_load --requests 500 --clients 8` (after
`make pipeline`).
"""

import argparse
import io
import os
import platform
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from importlib.metadata import version
from pathlib import Path

import httpx2
import numpy as np
import psutil
from PIL import Image

from mnist_pipeline.plumbing import paths
from mnist_pipeline.training.kernels import cpu_model
from tests.support.launch import serving

ROOT = Path(__file__).resolve().parent.parent
DIGITS = 100  # distinct test digits, sent in turn
WARM_UP = 20  # requests before the first memory reading
ALONE = 50  # requests from a single client, after the concurrent ones


def drawn(digit: np.ndarray) -> bytes:
    """An MNIST digit as the page's canvas sends it: dark on white, 280x280 PNG."""
    buffer = io.BytesIO()
    Image.fromarray(255 - digit).resize((280, 280), Image.Resampling.BICUBIC).save(buffer, "PNG")
    return buffer.getvalue()


def rss_mib(pid: int) -> float:
    return psutil.Process(pid).memory_info().rss / 2**20


def timed_reading(
    client: httpx2.Client, body: bytes, content_type: str = "image/png"
) -> float | None:
    """POST one picture; the seconds until its reading came back, or None if it did not."""
    start = time.perf_counter()
    try:
        response = client.post("api/predict", content=body, headers={"Content-Type": content_type})
        ok = response.status_code == 200 and "readings" in response.json()
    except httpx2.HTTPError:
        ok = False
    return time.perf_counter() - start if ok else None


def send_all(
    url: str, bodies: list[bytes], clients: int, deadline: float
) -> tuple[list[float], int, float]:
    """POST every body from `clients` threads; return latencies, failures and wall seconds."""
    local = threading.local()
    clients_made: list[httpx2.Client] = []
    failures = 0
    lock = threading.Lock()

    def send(body: bytes) -> float | None:
        nonlocal failures
        seconds = None
        if time.monotonic() <= deadline:
            if not hasattr(local, "client"):  # one keep-alive connection per client thread
                local.client = httpx2.Client(base_url=url, timeout=30)
                with lock:
                    clients_made.append(local.client)
            seconds = timed_reading(local.client, body)
        if seconds is None:
            with lock:
                failures += 1
        return seconds

    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(send, bodies))
    wall = time.perf_counter() - start
    for client in clients_made:
        client.close()
    return [seconds for seconds in results if seconds is not None], failures, wall


def p50_p95(latencies: list[float]) -> str:
    percentiles = statistics.quantiles(latencies, n=100, method="inclusive")
    return f"p50 {1000 * percentiles[49]:.0f} ms, p95 {1000 * percentiles[94]:.0f} ms"


def machine() -> str:
    """The machine and the versions that serve the page, for the first line of a report."""
    return (
        f"machine: {cpu_model()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"LiteRT {version('ai-edge-litert')}, Pillow {version('pillow')}, "
        f"FastAPI {version('fastapi')}, uvicorn {version('uvicorn')}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--max-seconds", type=float, default=300, help="stop sending after this")
    args = parser.parse_args()

    digits = np.load(ROOT / paths.RAW_DIR / "x_test.npy", mmap_mode="r")[:DIGITS]
    bodies = [drawn(digits[i % DIGITS]) for i in range(args.requests)]
    half = args.requests // 2
    with serving(ROOT / paths.SERVING_MODEL_FILE) as server:
        deadline = time.monotonic() + args.max_seconds
        send_all(server.url, [drawn(d) for d in digits[:WARM_UP]], args.clients, deadline)
        memory = [rss_mib(server.process.pid)]
        first = send_all(server.url, bodies[:half], args.clients, deadline)
        memory.append(rss_mib(server.process.pid))
        second = send_all(server.url, bodies[half:], args.clients, deadline)
        memory.append(rss_mib(server.process.pid))
        # One client alone: what a person drawing waits for, when nobody else is.
        alone = send_all(server.url, bodies[:ALONE], 1, deadline)

    latencies = first[0] + second[0]
    failures, wall = first[1] + second[1], first[2] + second[2]
    print(machine())
    print(f"{args.requests} requests from {args.clients} concurrent clients on 127.0.0.1")
    print(f"throughput:   {len(latencies) / wall:.0f} requests/s")
    print(f"latency:      {p50_p95(latencies)}")
    print(f"failed:       {failures + alone[1]}")
    print(
        f"server RSS:   {memory[0]:.0f} MiB after {WARM_UP} warm-up requests, "
        f"{memory[1]:.0f} MiB after {half}, {memory[2]:.0f} MiB after {args.requests}"
    )
    print(f"{ALONE} requests from 1 client alone: latency {p50_p95(alone[0])}")
    sys.exit(1 if failures + alone[1] else 0)


if __name__ == "__main__":
    main()
