"""The collection of labelled drawings (drawings/): what people drew on the page, or gave to
`predict --save`, with the digit they meant. Pillow and numpy only.

The layout is the one Keras' `image_dataset_from_directory` reads: a subfolder per digit, `0/` to
`9/`, holding 28x28 grayscale PNGs of the digit as the network was given it (MNIST's form, light
on dark). A drawing's file name is the hash of its pixels, so the same drawing saved twice is one
file, and names never collide. The hash also decides, once and for all, whether a drawing is held
out to score the model on (the field set) or may be learnt from: its side never changes as the
collection grows.
"""

import dataclasses
import errno
import hashlib
import io
from pathlib import Path

import numpy as np
from PIL import Image

from mnist_pipeline.data.dataset import IMAGE_SHAPE, NUM_CLASSES
from mnist_pipeline.plumbing.errors import PipelineError
from mnist_pipeline.plumbing.files import atomic_file, locked_folder

NAME_DIGITS = 16  # hex digits of the pixels' SHA-256 in a file name: 64 bits, no collision
SUFFIX = ".png"
FIELD_SHARE = 5  # one drawing in FIELD_SHARE (by its hash) is held out: the field set
# Bounds on what a collection may grow to, checked before each new drawing: a collection lives
# in git, and a page open to a network must not fill the disk. A drawing's PNG is under 1 KB.
MAX_DRAWINGS = 10_000
MAX_BYTES = 16 * 2**20


class CollectionFull(PipelineError):
    """A new drawing would take the collection past MAX_DRAWINGS or MAX_BYTES."""


class CollectionError(PipelineError):
    """The collection cannot be written (a read-only folder, a full disk) or read (a file that
    is not one of its drawings): the message names the file or folder."""


@dataclasses.dataclass(frozen=True)
class Saved:
    """Where save_drawing put a drawing: `path`; `added` unless it was there already; `relabelled`
    names the digit it was filed under before, if it was filed under another."""

    path: Path
    added: bool
    relabelled: int | None = None


@dataclasses.dataclass(frozen=True)
class Drawings:
    """Drawings as arrays, ordered by file name: `pixels` uint8 (N, 28, 28), `labels` uint8 (N,),
    and `names`, their file names."""

    pixels: np.ndarray
    labels: np.ndarray
    names: tuple[str, ...]


def check_label(label: object) -> int:
    """The digit a drawing is labelled with, 0-9; anything else is a PipelineError."""
    if isinstance(label, bool) or not isinstance(label, int) or not 0 <= label < NUM_CLASSES:
        raise PipelineError(f"label must be a digit 0-9, got {label!r}")
    return label


def check_pixels(pixels: np.ndarray) -> np.ndarray:
    """A digit in MNIST's form, uint8 (28, 28); anything else is a PipelineError."""
    if pixels.dtype != np.uint8 or pixels.shape != IMAGE_SHAPE:
        raise PipelineError(
            f"a drawing must be uint8 pixels of shape {IMAGE_SHAPE}, got {pixels.dtype} "
            f"{pixels.shape}"
        )
    return pixels


def drawing_name(pixels: np.ndarray) -> str:
    """The file name of a drawing: the hash of its pixels (not of a PNG encoder's bytes)."""
    digest = hashlib.sha256(np.ascontiguousarray(check_pixels(pixels)).data).hexdigest()
    return digest[:NAME_DIGITS] + SUFFIX


def is_field(name: str) -> bool:
    """Whether the drawing of this file name is held out to score on (the field set)."""
    return int(name[:NAME_DIGITS], 16) % FIELD_SHARE == 0


def encode_png(pixels: np.ndarray) -> bytes:
    """The PNG of a drawing: the same pixels give the same bytes (no time or text chunks)."""
    buffer = io.BytesIO()
    Image.fromarray(check_pixels(pixels), mode="L").save(buffer, format="PNG")
    return buffer.getvalue()


def save_drawing(folder: Path, pixels: np.ndarray, label: int) -> Saved:
    """File `pixels` under `folder/<label>/`, atomically: the same drawing again is not added, and
    one filed under another digit moves. Refused past MAX_DRAWINGS or MAX_BYTES (CollectionFull);
    a folder that cannot be written is a CollectionError."""
    label, name, png = check_label(label), drawing_name(pixels), encode_png(pixels)
    target = folder / str(label) / name
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with locked_folder(folder):  # one writer at a time: the bounds hold under concurrency
            if target.is_file():
                return Saved(target, added=False)
            for digit in range(NUM_CLASSES):
                if (filed := folder / str(digit) / name).is_file():
                    target.parent.mkdir(exist_ok=True)
                    filed.replace(target)
                    return Saved(target, added=False, relabelled=digit)
            check_room(folder, len(png))
            target.parent.mkdir(exist_ok=True)
            with atomic_file(target) as tmp:
                tmp.write_bytes(png)
    except OSError as error:
        reason = "no space left on the disk" if error.errno == errno.ENOSPC else error.strerror
        raise CollectionError(
            f"{error.filename or folder}: cannot save the drawing: {reason}"
        ) from None
    return Saved(target, added=True)


def check_room(folder: Path, new_bytes: int) -> None:
    """Raise CollectionFull unless one more drawing of `new_bytes` keeps `folder` in bounds."""
    files = collection_entries(folder)
    if len(files) + 1 > MAX_DRAWINGS:
        raise CollectionFull(f"{folder}: collection full ({MAX_DRAWINGS:,} drawings, the limit)")
    size = sum(path.stat().st_size for path in files)
    if size + new_bytes > MAX_BYTES:
        raise CollectionFull(
            f"{folder}: collection full ({size:,} bytes; the limit is {MAX_BYTES:,})"
        )


def load_drawings(folder: Path) -> Drawings:
    """Read every drawing under `folder`, ordered by file name; an empty or absent folder is an
    empty collection. A file that is not a drawing of this layout (another name or size, a
    damaged PNG, a stray file, one drawing under two digits, as a merge of two branches may leave)
    is a CollectionError naming it: a collection is read whole or not."""
    pixels, labels, names = [], [], []
    for path in sorted(collection_entries(folder), key=lambda path: path.name):
        if names and names[-1] == path.name:
            raise CollectionError(
                f"{path}: the same drawing is also under {labels[-1]}/: keep one of the two"
            )
        pixels.append(read_drawing(path))
        labels.append(int(path.parent.name))
        names.append(path.name)
    if not pixels:
        return Drawings(np.zeros((0, *IMAGE_SHAPE), np.uint8), np.zeros(0, np.uint8), ())
    return Drawings(np.stack(pixels), np.array(labels, np.uint8), tuple(names))


def collection_entries(folder: Path) -> list[Path]:
    """The drawings' paths under `folder`; a CollectionError for anything else found in it."""
    if not folder.exists():
        return []
    entries = []
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith("."):  # .gitignore, .DS_Store, a killed write's temporary
            continue
        if entry.name not in {str(digit) for digit in range(NUM_CLASSES)}:
            raise CollectionError(f"{entry}: not a digit's folder (expected 0 to 9 only)")
        if not entry.is_dir():
            raise CollectionError(f"{entry}: a file where the digit's folder belongs")
        for path in sorted(entry.iterdir()):
            if not path.name.startswith("."):
                entries.append(path)
    return entries


def read_drawing(path: Path) -> np.ndarray:
    """The pixels of one drawing file, checked against its name."""
    try:
        with Image.open(path) as image:
            if image.mode != "L" or image.size != IMAGE_SHAPE[::-1]:
                raise CollectionError(
                    f"{path}: not a drawing (expected a 28x28 grayscale PNG, got "
                    f"{image.size[0]}x{image.size[1]} {image.mode})"
                )
            pixels = np.asarray(image, dtype=np.uint8)
    except (OSError, SyntaxError, ValueError) as error:
        raise CollectionError(f"{path}: not a readable PNG ({error})") from None
    if drawing_name(pixels) != path.name:
        raise CollectionError(
            f"{path}: its name is not the hash of its pixels (expected {drawing_name(pixels)})"
        )
    return pixels
