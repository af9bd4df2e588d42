import hashlib
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mnist_pipeline.data import collection
from mnist_pipeline.data.collection import (
    CollectionError,
    CollectionFull,
    drawing_name,
    is_field,
    load_drawings,
    save_drawing,
)
from mnist_pipeline.plumbing.errors import PipelineError
from mnist_pipeline.plumbing.files import locked_folder
from tests.support.read_only import read_only


def picture(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (28, 28), dtype=np.uint8)


def test_a_drawing_is_named_by_the_sha256_of_its_pixels():
    pixels = picture(0)
    expected = hashlib.sha256(pixels.tobytes()).hexdigest()[:16] + ".png"
    assert drawing_name(pixels) == expected
    assert drawing_name(picture(1)) != expected


def test_one_drawing_in_five_is_held_out_by_its_hash_alone():
    names = [drawing_name(picture(seed)) for seed in range(2000)]
    held_out = [name for name in names if is_field(name)]
    assert 0.17 < len(held_out) / len(names) < 0.23
    assert is_field("0000000000000005.png") and not is_field("0000000000000004.png")


def test_saved_drawings_are_filed_by_digit_and_read_back_by_name(tmp_path):
    drawings = {picture(seed).tobytes(): (picture(seed), seed % 10) for seed in range(12)}
    for pixels, label in drawings.values():
        saved = save_drawing(tmp_path, pixels, label)
        assert saved.added and saved.path == tmp_path / str(label) / drawing_name(pixels)
    # The layout Keras reads: a subfolder per digit of 28x28 grayscale PNGs.
    with Image.open(saved.path) as image:
        assert (image.format, image.mode, image.size) == ("PNG", "L", (28, 28))
    loaded = load_drawings(tmp_path)
    assert list(loaded.names) == sorted(loaded.names) and len(loaded.names) == 12
    for pixels, label, name in zip(loaded.pixels, loaded.labels, loaded.names, strict=True):
        expected_pixels, expected_label = drawings[pixels.tobytes()]
        assert label == expected_label and name == drawing_name(expected_pixels)


def test_the_same_drawing_twice_is_one_file_and_a_new_label_moves_it(tmp_path):
    pixels = picture(3)
    first = save_drawing(tmp_path, pixels, 7)
    again = save_drawing(tmp_path, pixels, 7)
    assert again == collection.Saved(first.path, added=False)
    moved = save_drawing(tmp_path, pixels, 1)
    assert moved.relabelled == 7 and not moved.added and not first.path.exists()
    assert load_drawings(tmp_path).labels.tolist() == [1]


def test_the_png_bytes_depend_on_the_pixels_only(tmp_path):
    save_drawing(tmp_path / "a", picture(4), 2)
    save_drawing(tmp_path / "b", picture(4), 2)
    name = drawing_name(picture(4))
    assert (tmp_path / "a" / "2" / name).read_bytes() == (tmp_path / "b" / "2" / name).read_bytes()


@pytest.mark.parametrize("label", [-1, 10, 3.0, True, "7", None])
def test_a_label_other_than_a_digit_is_refused_and_nothing_written(tmp_path, label):
    with pytest.raises(PipelineError, match=r"label must be a digit 0-9, got"):
        save_drawing(tmp_path, picture(0), label)
    assert not list(tmp_path.rglob("*.png"))


@pytest.mark.parametrize("label", [0, 9])
def test_both_ends_of_the_digits_are_labels(tmp_path, label):
    assert save_drawing(tmp_path, picture(0), label).path.parent.name == str(label)


@pytest.mark.parametrize(
    "pixels", [np.zeros((28, 27), np.uint8), np.zeros((28, 28), np.float32)], ids=str
)
def test_pixels_other_than_an_mnist_digit_are_refused(tmp_path, pixels):
    with pytest.raises(PipelineError, match="must be uint8 pixels of shape"):
        save_drawing(tmp_path, pixels, 1)


def test_the_count_bound_admits_the_last_drawing_and_refuses_the_next(tmp_path, monkeypatch):
    monkeypatch.setattr(collection, "MAX_DRAWINGS", 3)
    for seed in range(3):
        assert save_drawing(tmp_path, picture(seed), 0).added
    with pytest.raises(CollectionFull, match=r"collection full \(3 drawings, the limit\)"):
        save_drawing(tmp_path, picture(3), 0)
    assert len(load_drawings(tmp_path).names) == 3
    # A drawing already in it is no growth: still answered.
    assert not save_drawing(tmp_path, picture(0), 0).added


def test_the_size_bound_admits_exactly_the_limit_and_refuses_a_byte_more(tmp_path, monkeypatch):
    sizes = [len(collection.encode_png(picture(seed))) for seed in range(3)]
    monkeypatch.setattr(collection, "MAX_BYTES", sum(sizes[:2]))
    save_drawing(tmp_path, picture(0), 0)
    save_drawing(tmp_path, picture(1), 0)
    with pytest.raises(CollectionFull, match=f"the limit is {sum(sizes[:2]):,}"):
        save_drawing(tmp_path, picture(2), 0)


def test_concurrent_saves_never_pass_the_bound(tmp_path, monkeypatch):
    monkeypatch.setattr(collection, "MAX_DRAWINGS", 5)
    outcomes = []

    def save(seed: int) -> None:
        try:
            outcomes.append(save_drawing(tmp_path, picture(seed), seed % 10).added)
        except CollectionFull:
            outcomes.append("full")

    threads = [threading.Thread(target=save, args=(seed,)) for seed in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes.count(True) == 5 and outcomes.count("full") == 15
    assert len(load_drawings(tmp_path).names) == 5


def test_a_save_waits_while_another_writer_holds_the_collection(tmp_path):
    tmp_path.mkdir(exist_ok=True)
    saving = threading.Thread(target=save_drawing, args=(tmp_path, picture(0), 2))
    with locked_folder(tmp_path):  # as another process or thread saving would hold it
        saving.start()
        saving.join(timeout=0.5)
        assert saving.is_alive() and not list(tmp_path.rglob("*.png"))
    saving.join(timeout=10)
    assert not saving.is_alive() and load_drawings(tmp_path).labels.tolist() == [2]


def test_a_read_only_folder_is_one_line_naming_it(tmp_path, monkeypatch):
    with (
        read_only(tmp_path / "3", monkeypatch),
        pytest.raises(CollectionError, match=r"/3: cannot save the drawing: Permission"),
    ):
        save_drawing(tmp_path, picture(0), 3)
    assert not [path for path in tmp_path.rglob("*") if path.is_file()]


def test_a_full_disk_is_said_so_and_leaves_nothing(tmp_path, monkeypatch):
    def no_space(self, data):
        raise OSError(28, "No space left on device", str(self))

    monkeypatch.setattr(Path, "write_bytes", no_space)
    with pytest.raises(CollectionError, match="cannot save the drawing: no space left on the disk"):
        save_drawing(tmp_path, picture(0), 3)
    assert not [path for path in tmp_path.rglob("*") if path.is_file()]


def test_an_absent_or_empty_collection_is_empty(tmp_path):
    for folder in (tmp_path / "absent", tmp_path):
        drawings = load_drawings(folder)
        assert drawings.pixels.shape == (0, 28, 28) and drawings.labels.shape == (0,)
        assert drawings.pixels.dtype == drawings.labels.dtype == np.uint8


def bad_entries(folder: Path) -> dict[str, tuple[Path, bytes | None]]:
    """Each way a file in a collection is not one of its drawings, with the message part."""
    right = collection.encode_png(picture(0))
    rgb = Image.new("RGB", (28, 28))
    rgb_path = folder / "4" / "rgb.png"
    return {
        "not a digit's folder": (folder / "x" / drawing_name(picture(0)), right),
        "not a readable PNG": (folder / "1" / "0000000000000000.png", b"not a png"),
        "its name is not the hash of its pixels": (folder / "2" / "0000000000000000.png", right),
        "expected a 28x28 grayscale PNG, got 28x28 RGB": (rgb_path, rgb),
    }


@pytest.mark.parametrize(
    "problem",
    [
        "not a digit's folder",
        "not a readable PNG",
        "its name is not the hash of its pixels",
        "expected a 28x28 grayscale PNG, got 28x28 RGB",
    ],
)
def test_a_file_that_is_not_a_drawing_is_named_in_one_line(tmp_path, problem):
    save_drawing(tmp_path, picture(5), 5)
    path, content = bad_entries(tmp_path)[problem]
    path.parent.mkdir(exist_ok=True)
    if isinstance(content, Image.Image):
        content.save(path, format="PNG")
    else:
        path.write_bytes(content)
    with pytest.raises(CollectionError, match=problem) as raised:
        load_drawings(tmp_path)
    assert str(path if problem != "not a digit's folder" else path.parent) in str(raised.value)


def test_one_drawing_under_two_digits_is_named_in_one_line(tmp_path):
    # As a merge of two branches that labelled the same drawing differently leaves it.
    first = save_drawing(tmp_path, picture(6), 1).path
    twin = tmp_path / "7" / first.name
    twin.parent.mkdir()
    twin.write_bytes(first.read_bytes())
    with pytest.raises(CollectionError, match=f"{twin}: the same drawing is also under 1/"):
        load_drawings(tmp_path)


def test_a_killed_saves_temporary_is_not_counted_against_the_bound(tmp_path, monkeypatch):
    monkeypatch.setattr(collection, "MAX_DRAWINGS", 1)
    (tmp_path / "5").mkdir()
    (tmp_path / "5" / ".0123456789abcdef.png.tmp-x1y2.png").write_bytes(b"cut short")
    assert save_drawing(tmp_path, picture(0), 5).added


def test_a_file_where_a_digits_folder_belongs_refuses_reads_and_saves_in_one_line(tmp_path):
    (tmp_path / "5").write_bytes(b"in the way")
    message = f"{tmp_path / '5'}: a file where the digit's folder belongs"
    with pytest.raises(CollectionError, match=message):
        load_drawings(tmp_path)
    with pytest.raises(CollectionError, match=message):
        save_drawing(tmp_path, picture(0), 3)


def test_hidden_files_are_not_drawings(tmp_path):
    save_drawing(tmp_path, picture(5), 5)
    (tmp_path / ".gitignore").write_text("")
    (tmp_path / "5" / ".drawing.png.tmp-abc").write_bytes(b"half")
    assert len(load_drawings(tmp_path).names) == 1
