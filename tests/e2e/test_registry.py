"""The model registry end to end: versions and stages as GTO's git tags on a bare `origin`, models
fetched by reference from the S3 remote (moto's server on 127.0.0.1) into the user cache, and read
again from there with the server stopped.

Clone A (tests/support/remote.py) registers its model as mnist-mlp v1.0.0, promotes it to prod,
runs the experiment `wider` and pushes all of it; the tests read them from fresh clones of origin.
"""

import hashlib
import json
import os
import subprocess
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from mnist_pipeline.reading import registry
from tests.support.launch import serving
from tests.support.project import BIN, DVC, ENV, copy_project, output, run, set_params
from tests.support.remote import TIMEOUT, aws_env, cache_file, clone, lock_outputs, md5

pytestmark = pytest.mark.e2e

GTO = str(BIN / "gto")
SERVED = "models/model.tflite"


@dataclass(frozen=True)
class Registry:
    origin: Path
    md5: str  # of v1.0.0, the prod model
    accuracy: float  # its committed test accuracy
    experiment_md5: str  # of experiment `wider`
    predicted: list[int]  # A's predictions of the tiny test set (reports/evaluate/predictions.csv)


@pytest.fixture(scope="module")
def registry_origin(s3, shared, tmp_path_factory) -> Registry:
    a = copy_project(shared.a, tmp_path_factory.mktemp("registry") / "a")
    run(a, GTO, "register", "mnist-mlp", "--version", "v1.0.0")
    run(a, GTO, "assign", "mnist-mlp", "--version", "v1.0.0", "--stage", "prod")
    run(a, "git", "push", "-q", "origin", "--tags")
    served = lock_outputs(a)[SERVED]
    accuracy = json.loads((a / "reports/metrics.json").read_text())["test"]["accuracy"]
    lines = (a / "reports/evaluate/predictions.csv").read_text().splitlines()[1:]
    predicted = [int(line.split(",")[1]) for line in lines]
    run(a, DVC, "exp", "run", "-n", "wider", "-S", "model.dense.hidden_units=[32]", timeout=TIMEOUT)
    run(a, DVC, "exp", "push", "origin", "wider", env=aws_env(s3), timeout=TIMEOUT)
    return Registry(shared.origin, served, accuracy, lock_outputs(a)[SERVED], predicted)


@pytest.fixture
def digits(tmp_path, tiny_mnist) -> list[Path]:
    """The first three digits of the tiny test set, as .npy files."""
    files = []
    for index, digit in enumerate(tiny_mnist["x_test"][:3]):
        files.append(tmp_path / f"digit-{index}.npy")
        np.save(files[-1], digit)
    return files


def predict(repo: Path, reference: str, files: list[Path], env: dict[str, str], check=True):
    """`predict --json --model REFERENCE` in `repo`, its own code and DVC project."""
    command = [sys.executable, "-m", "mnist_pipeline.predict", "--json", "--model", reference]
    return run(repo, *command, *map(str, files), env=env, check=check, timeout=TIMEOUT)


def cache_env(s3, folder: Path) -> dict[str, str]:
    return {**aws_env(s3), "MNIST_PIPELINE_CACHE": str(folder)}


def test_the_model_is_got_by_version_and_by_stage_from_another_folder(
    s3, registry_origin, tmp_path
):
    for option in (["--rev", "v1.0.0"], ["--stage", "prod"]):
        out = tmp_path / f"{option[1]}.tflite"
        command = [DVC, "artifacts", "get", str(registry_origin.origin), "mnist-mlp", *option]
        run(tmp_path, *command, "-o", str(out), env=aws_env(s3), timeout=TIMEOUT)
        assert md5(out) == registry_origin.md5


def test_gto_shows_the_version_and_its_stage(registry_origin, tmp_path):
    b = clone(registry_origin.origin, tmp_path / "b")
    shown = json.loads(output(b, GTO, "show", "--json"))
    assert shown["mnist-mlp"]["version"] == "v1.0.0"
    assert shown["mnist-mlp"]["stage"] == {"prod": "v1.0.0"}


def test_predict_by_stage_fetches_once_then_reads_offline_from_the_cache(
    s3, registry_origin, digits, tmp_path
):
    b = clone(registry_origin.origin, tmp_path / "b")  # no `dvc pull`: nothing in its cache
    env = cache_env(s3, tmp_path / "cache")
    first = json.loads(predict(b, "mnist-mlp#prod", digits, env).stdout)
    assert [reading["digit"] for reading in first] == registry_origin.predicted[:3]
    assert first[0]["model"] == {
        "reference": "mnist-mlp#prod",
        "version": "v1.0.0",
        "revision": run(b, "git", "rev-parse", "mnist-mlp@v1.0.0^{}").stdout.strip(),
        "md5": registry_origin.md5,
    }
    assert md5(tmp_path / "cache/models" / f"{registry_origin.md5}.tflite") == registry_origin.md5

    s3.stop()
    try:
        again = predict(b, "mnist-mlp#prod", digits, env)
    finally:
        s3.start()
    assert json.loads(again.stdout) == first


def test_predict_by_version_and_by_experiment_name(s3, registry_origin, digits, tmp_path):
    b = clone(registry_origin.origin, tmp_path / "b")
    env = cache_env(s3, tmp_path / "cache")
    by_version = json.loads(predict(b, "mnist-mlp@v1.0.0", digits, env).stdout)
    assert by_version[0]["model"]["md5"] == registry_origin.md5
    run(b, DVC, "exp", "pull", "origin", "wider", env=aws_env(s3), timeout=TIMEOUT)
    by_experiment = json.loads(predict(b, "wider", digits, env).stdout)
    assert by_experiment[0]["model"]["md5"] == registry_origin.experiment_md5
    assert by_experiment[0]["model"]["version"] is None


@pytest.mark.parametrize("reference", ["origin/main", "HEAD@{0}", "main~0"])
def test_a_revision_with_a_slash_or_an_at_sign_is_a_revision(
    s3, registry_origin, digits, tmp_path, reference
):
    b = clone(registry_origin.origin, tmp_path / "b")  # main is the commit v1.0.0 was tagged on
    [reading, *_] = json.loads(predict(b, reference, digits, cache_env(s3, tmp_path)).stdout)
    assert reading["model"]["md5"] == registry_origin.md5
    assert reading["model"]["version"] is None


@pytest.mark.parametrize(
    ("reference", "message"),
    [
        ("mnist-mlp@v9.9.9", "mnist-mlp@v9.9.9: no such version (versions: v1.0.0)"),
        ("mnist-mlp#staging", "mnist-mlp#staging: no version in stage staging (stages: prod)"),
        (
            "mnist-cnn#prod",
            "mnist-cnn#prod: not a model file, a registered model (NAME@VERSION or NAME#STAGE), "
            "a git revision or an experiment of this repository (registered: mnist-mlp; "
            "branches: main; experiments: none)",
        ),
        (
            "no-such-revision",
            "no-such-revision: not a model file, a registered model (NAME@VERSION or "
            "NAME#STAGE), a git revision or an experiment of this repository (registered: "
            "mnist-mlp; branches: main; experiments: none)",
        ),
        (
            "models/none.tflite",
            "models/none.tflite: no trained model (looked in {b}/models); run `dvc repro` in the "
            "project first, or name the model with --model PATH",
        ),
    ],
)
def test_an_unknown_reference_is_one_line_listing_what_exists(
    registry_origin, digits, tmp_path, reference, message
):
    b = clone(registry_origin.origin, tmp_path / "b")
    result = predict(b, reference, digits, {"MNIST_PIPELINE_CACHE": str(tmp_path)}, check=False)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.splitlines() == [f"predict: error: {message.format(b=b)}"]


@pytest.mark.parametrize("fault", ["server down", "wrong key"])
def test_an_unreachable_remote_is_one_line_naming_the_endpoint(
    s3, registry_origin, digits, tmp_path, fault
):
    b = clone(registry_origin.origin, tmp_path / "b")
    env = cache_env(s3, tmp_path / "cache")
    if fault == "wrong key":
        env["AWS_SECRET_ACCESS_KEY"] = "not-the-secret-key"
    else:
        s3.stop()
    try:
        result = predict(b, "mnist-mlp#prod", digits, env, check=False)
    finally:
        if fault == "server down":
            s3.start()
    assert result.returncode == 1 and result.stdout == ""
    assert "Traceback" not in result.stderr
    [line] = [line for line in result.stderr.splitlines() if line.startswith("predict: ")]
    assert line.startswith(f"predict: error: mnist-mlp#prod: cannot fetch {SERVED} of revision ")
    assert f"endpoint {s3.endpoint_url})" in line
    assert list((tmp_path / "cache/models").iterdir()) == []  # nothing half-written


def test_a_stage_names_the_version_assigned_to_it_not_the_newest(
    reproduced_project, digits, tmp_path
):
    repo = reproduced_project
    run(repo, GTO, "register", "mnist-mlp", "--version", "v1.0.0")
    run(repo, GTO, "assign", "mnist-mlp", "--version", "v1.0.0", "--stage", "prod")
    prod = lock_outputs(repo)[SERVED]
    set_params(repo, train={"epochs": 2})  # another model, registered later and in no stage
    run(repo, DVC, "repro", timeout=TIMEOUT)
    run(repo, "git", "commit", "-qam", "two epochs")
    run(repo, GTO, "register", "mnist-mlp", "--version", "v1.1.0")
    newest = lock_outputs(repo)[SERVED]
    assert newest != prod
    env = {"MNIST_PIPELINE_CACHE": str(tmp_path / "cache")}
    for reference, version, served in (("mnist-mlp#prod", "v1.0.0", prod),
                                       ("mnist-mlp@v1.1.0", "v1.1.0", newest)):  # fmt: skip
        [reading, *_] = json.loads(predict(repo, reference, digits, env).stdout)
        assert (reading["model"]["version"], reading["model"]["md5"]) == (version, served)


def test_a_download_of_other_bytes_than_dvc_lock_names_is_refused_and_not_kept(
    reproduced_project, glyph_model_file, digits, tmp_path
):
    repo = reproduced_project
    expected = lock_outputs(repo)[SERVED]
    stored = cache_file(repo, expected)
    stored.chmod(0o644)
    planted = glyph_model_file.read_bytes()  # another model where HEAD's should be
    stored.write_bytes(planted)
    result = predict(repo, "HEAD", digits, {"MNIST_PIPELINE_CACHE": str(tmp_path)}, check=False)
    assert result.returncode == 1 and result.stdout == ""
    revision = run(repo, "git", "rev-parse", "HEAD").stdout.strip()
    assert [line for line in result.stderr.splitlines() if line.startswith("predict: ")] == [
        f"predict: error: HEAD: fetched {SERVED} of revision {revision[:7]} from the DVC cache (no "
        f"remote is configured), but its md5 is {hashlib.md5(planted).hexdigest()}, not "
        f"{expected} of dvc.lock: kept nothing"
    ]
    assert list((tmp_path / "models").iterdir()) == []


# A download cut short by the network, in a process of its own: resolving a registered model
# imports GTO, whose import-time logging.config.dictConfig closes every logging handler of the
# process (python/cpython#127567), pytest's capture among them.
CUT_SHORT = """
import shutil, sys
from mnist_pipeline.reading import registry
from mnist_pipeline.plumbing.errors import PipelineError

def cut_short(source, target):
    target.write(source.read(1000))
    raise ConnectionResetError("connection reset by peer")

source = registry.resolve("mnist-mlp#prod")
copy, shutil.copyfileobj = shutil.copyfileobj, cut_short
try:
    registry.local_file(source)
except PipelineError as error:
    print(error)
shutil.copyfileobj = copy
"""


def test_a_download_cut_short_leaves_nothing_and_the_next_one_completes(
    s3, registry_origin, digits, tmp_path
):
    b = clone(registry_origin.origin, tmp_path / "b")
    env = cache_env(s3, tmp_path / "cache")
    models = tmp_path / "cache/models"
    models.mkdir(parents=True)
    killed = models / f".{registry_origin.md5}.tflite.tmp-killed.tflite"
    killed.write_bytes(b"TFL3 the first half of a model")  # what a killed download leaves,
    # removed by the next download of the same model

    cut = run(b, sys.executable, "-c", CUT_SHORT, env=env, timeout=TIMEOUT)
    assert "connection reset by peer" in cut.stdout
    assert list(models.iterdir()) == []  # neither its own partial file nor the one before

    predict(b, "mnist-mlp#prod", digits, env)
    cached = models / f"{registry_origin.md5}.tflite"
    assert list(models.iterdir()) == [cached] and md5(cached) == registry_origin.md5


def test_two_starts_at_once_fetch_the_model_once_and_both_read(
    s3, registry_origin, digits, tmp_path
):
    b = clone(registry_origin.origin, tmp_path / "b")
    env = {**os.environ, **ENV, **cache_env(s3, tmp_path / "cache")}
    command = [sys.executable, "-m", "mnist_pipeline.predict", "--json", "--model"]
    starts = [
        subprocess.Popen(
            [*command, "mnist-mlp#prod", *map(str, digits)],
            cwd=b,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [start.communicate(timeout=TIMEOUT) for start in starts]
    assert [start.returncode for start in starts] == [0, 0], outputs
    assert outputs[0][0] == outputs[1][0]
    fetched = [err for _, err in outputs if "fetching" in err]
    assert len(fetched) == 1  # the second waited for the first, then read the cache
    assert [p.name for p in (tmp_path / "cache/models").iterdir()] == [
        f"{registry_origin.md5}.tflite"
    ]


def test_the_web_server_serves_a_registered_model_and_an_experiment_then_starts_offline(
    s3, registry_origin, tmp_path
):
    b = clone(registry_origin.origin, tmp_path / "b")
    run(b, DVC, "exp", "pull", "origin", "wider", env=aws_env(s3), timeout=TIMEOUT)
    env = {**os.environ, **ENV, **cache_env(s3, tmp_path / "cache")}
    with serving("mnist-mlp#prod", "wider", cwd=b, env=env) as server:
        first = served_models(server.url)
    [prod, wider] = first
    # TensorFlow Serving's versions (docs/web.md): v1.0.0 as 1000000, the experiment by its md5.
    assert (prod["version"], prod["md5"]) == ("1000000", registry_origin.md5)
    assert prod["label"].endswith(", served as version 1000000)")
    assert prod["accuracy"] == registry_origin.accuracy
    assert (wider["version"], wider["md5"]) == (
        str(int(registry_origin.experiment_md5[:8], 16)),
        registry_origin.experiment_md5,
    )
    s3.stop()
    try:
        with serving("mnist-mlp#prod", "wider", cwd=b, env=env) as server:
            assert served_models(server.url) == first  # from the user cache
            instances = {"instances": [[0.0] * 784]}
            request = urllib.request.Request(
                f"{server.url}v1/models/mnist-mlp/versions/1000000:predict",
                data=json.dumps(instances).encode(),
                headers={"Content-Type": "application/json"},
            )
            with urllib.request.urlopen(request, timeout=60) as response:
                [prediction] = json.load(response)["predictions"]
    finally:
        s3.start()
    assert len(prediction) == 10 and abs(sum(prediction) - 1) < 1e-5


def served_models(url: str) -> list[dict]:
    with urllib.request.urlopen(f"{url}api/health", timeout=60) as response:
        return json.load(response)["models"]


def test_the_workspace_model_has_its_committed_accuracy_until_it_changes(
    reproduced_project, monkeypatch
):
    monkeypatch.chdir(reproduced_project)
    metrics = json.loads(Path("reports/metrics.json").read_text())
    source = registry.resolve(SERVED)
    assert registry.committed_accuracy(source) == metrics["test"]["accuracy"]
    with Path(SERVED).open("ab") as model:
        model.write(b"\0")  # no longer the model dvc.lock and the metrics are of
    assert registry.committed_accuracy(registry.resolve(SERVED)) is None
    assert registry.committed_accuracy(registry.resolve("models/model.keras")) is None
