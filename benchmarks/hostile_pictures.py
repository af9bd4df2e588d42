"""Benchmark: what `imaging.read_digit` costs on hostile pictures and on the largest legal ones.

Builds pictures a hostile user could send within the web server's upload limits (a few KB that
decode to a very wide, very tall or one-pixel-high picture), the largest pictures those limits
accept (an 8000x400 strip; 2000x2000 drawings in colour, with transparency, in 16 bits and in
floats; a TIFF of 15,500 1x1 pages; 2000x2000 photos as JPEG, JPEG 2000 and WebP), and a
12-megapixel phone photo, which only `predict` accepts. Each is read in a fresh process through
read_digit; printed: its size, whether it is within the limits, the CPU seconds and the peak
memory above the idle process, and whether it was read or refused (with the one line). Linux
only (the peak is read from /proc). Usage: `python -m benchmarks.hostile_pictures`.
"""

import argparse
import io
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import psutil
from PIL import Image

from mnist_pipeline.web.limits import Limits
from tests.support.pictures import (
    colour_drawing,
    elongated_strip,
    float_drawing,
    many_page_tiff,
    one_pixel_line,
    photo,
    sixteen_bit_drawing,
    tall_strip,
    transparent_drawing,
    wide_strip,
)

ROOT = Path(__file__).resolve().parent.parent
# Address space allowed to each reading: a runaway one fails there instead of taking the machine.
ADDRESS_SPACE_CAP = 12 * 2**30
TIMEOUT = 120  # seconds for any one reading


PICTURES: dict[str, Callable[[], bytes]] = {
    "wide strip, PNG": wide_strip,
    "tall strip, PNG": tall_strip,
    "one-pixel line, PNG": one_pixel_line,
    "20:1 strip, PNG": elongated_strip,
    "colour drawing, PNG": colour_drawing,
    "transparent drawing, PNG": transparent_drawing,
    "16-bit drawing, PNG": sixteen_bit_drawing,
    "float drawing, TIFF": float_drawing,
    "15,500 pages, TIFF": many_page_tiff,
    "photo, JPEG": lambda: photo((2000, 2000), quality=75),
    "photo, JPEG 2000": lambda: photo((2000, 2000), "JPEG2000", quality_layers=[20]),
    "photo, WebP": lambda: photo((2000, 2000), "WEBP", quality=80),
    "phone photo, JPEG": lambda: photo((4000, 3000), quality=85),
}


def peak_resident() -> int:
    """This process's peak resident memory, in bytes, since reset_peak (Linux: VmHWM)."""
    status = Path("/proc/self/status").read_text()
    kib = next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:"))
    return int(kib) * 1024


def reset_peak() -> None:
    """Make the peak resident memory the current one (Linux 4.0 and later)."""
    Path("/proc/self/clear_refs").write_text("5")


def read_one(path: Path) -> dict[str, object]:
    """Read `path` through read_digit here: its outcome, CPU seconds and peak memory above idle."""
    from mnist_pipeline.plumbing.errors import PipelineError
    from mnist_pipeline.reading.imaging import read_digit

    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE_CAP, ADDRESS_SPACE_CAP))
    reset_peak()
    idle = psutil.Process().memory_info().rss
    start = time.process_time()
    try:
        read_digit(path)
        outcome = "read"
    except PipelineError as error:
        outcome = f"refused: {error}"
    except Exception as error:  # what this benchmark is here to find
        outcome = f"failed: {type(error).__name__}: {error}"
    cpu = time.process_time() - start
    return {"cpu_s": cpu, "peak_mb": (peak_resident() - idle) / 1e6, "outcome": outcome}


def measure(path: Path) -> dict[str, object]:
    """read_one in a fresh process, so that no reading inherits another's memory."""
    command = [sys.executable, "-m", "benchmarks.hostile_pictures", "--read", str(path)]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT)
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or [f"exit status {result.returncode}"])[-1]
        return {"cpu_s": float("nan"), "peak_mb": float("nan"), "outcome": f"died: {last}"}
    return json.loads(result.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--read", type=Path, help=argparse.SUPPRESS)  # the fresh process's part
    args = parser.parse_args()
    if args.read:
        print(json.dumps(read_one(args.read)))
        return
    limits = Limits()
    print(f"limits: {limits.max_bytes:,} bytes, {limits.max_pixels:,} pixels")
    print(f"{'picture':<25} {'size':>11} {'bytes':>10} {'limits':>6} {'CPU s':>6} {'peak MB':>8}")
    with tempfile.TemporaryDirectory() as folder:
        for number, (name, make) in enumerate(PICTURES.items()):
            body = make()
            with Image.open(io.BytesIO(body)) as picture:
                width, height = picture.size
                suffix = picture.format.lower()
            within = len(body) <= limits.max_bytes and width * height <= limits.max_pixels
            path = Path(folder) / f"{number}.{suffix}"
            path.write_bytes(body)
            figures = measure(path)
            print(
                f"{name:<25} {f'{width}x{height}':>11} {len(body):>10,} "
                f"{'within' if within else 'over':>6} {figures['cpu_s']:6.2f} "
                f"{figures['peak_mb']:8.1f}  {figures['outcome'].replace(str(path), path.name)}",
                flush=True,
            )


if __name__ == "__main__":
    main()
