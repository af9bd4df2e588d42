"""The pinned kernel path: one set of trained bytes whatever the core count, the thread and
instruction-set variables a user's shell sets, or the CPU's own best instruction set."""

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mnist_pipeline.data.preprocessing import prepare
from mnist_pipeline.params import ModelParams, TrainParams
from mnist_pipeline.plumbing.errors import PipelineError
from mnist_pipeline.training import kernels
from tests.support.shell import HOSTILE
from tests.support.synthetic import train_stage_folder

ROOT = Path(__file__).resolve().parents[2]


def test_the_avx2_path_caps_onednn_turns_its_kernels_on_and_fixes_the_threads():
    assert kernels.pinned_environment(3, "avx2") == {
        "TF_NUM_INTRAOP_THREADS": "3",
        "TF_NUM_INTEROP_THREADS": "3",
        "TF_ENABLE_ONEDNN_OPTS": "1",
        "ONEDNN_MAX_CPU_ISA": "AVX2",
        "ONEDNN_DEFAULT_FPMATH_MODE": "STRICT",
    }
    # `native` leaves the kernels to TensorFlow but still fixes the thread count.
    assert kernels.pinned_environment(3, "native") == {
        "TF_NUM_INTRAOP_THREADS": "3",
        "TF_NUM_INTEROP_THREADS": "3",
    }


def fake_cpu(monkeypatch, tmp_path, flags: str, machine: str = "x86_64") -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nmodel name\t: Test CPU\nflags\t\t: {flags}\n\n")
    monkeypatch.setattr(kernels, "CPU_INFO", cpuinfo)
    monkeypatch.setattr(kernels.platform, "machine", lambda: machine)


@pytest.mark.parametrize(
    ("flags", "machine", "missing"),
    [
        ("sse4_2 avx fma", "x86_64", "this CPU lacks AVX2"),
        ("sse4_2 avx avx2", "x86_64", "this CPU lacks FMA"),
        ("sse4_2 avx", "x86_64", "this CPU lacks AVX2 and FMA"),
        ("fp asimd", "aarch64", "a aarch64 CPU, not x86-64"),
    ],
)
def test_a_cpu_without_avx2_is_refused_with_the_way_out(
    monkeypatch, tmp_path, flags, machine, missing
):
    fake_cpu(monkeypatch, tmp_path, flags, machine)
    with pytest.raises(PipelineError) as error:
        kernels.check_avx2()
    assert missing in str(error.value)
    assert "set train.instruction_set: native" in str(error.value)


def test_a_cpu_with_avx2_and_fma_runs_the_pinned_path(monkeypatch, tmp_path):
    fake_cpu(monkeypatch, tmp_path, "sse4_2 avx avx2 fma")
    kernels.check_avx2()
    assert kernels.cpu_model() == "Test CPU"


def test_once_tensorflow_is_loaded_another_kernel_path_is_refused():
    import tensorflow  # noqa: F401 (loaded, as in any test process that trained)

    with pytest.raises(PipelineError, match="loaded before its kernel path was pinned"):
        kernels.pin(1, "avx2")
    with pytest.raises(PipelineError, match="2 intra-op threads; 2 inter-op threads"):
        kernels.check_pinned(1, "avx2")
    # The pin this process made before TensorFlow loaded (conftest) stands.
    kernels.pin(TrainParams().threads, TrainParams().instruction_set)
    kernels.check_pinned(TrainParams().threads, TrainParams().instruction_set)


def test_training_switches_op_determinism_on(tiny_mnist):
    import tensorflow as tf

    data = prepare(tiny_mnist)
    from mnist_pipeline.training.fit import train_model

    train_model(data["x_train"][:64], data["y_train"][:64], ModelParams(), TrainParams(epochs=1))
    # An op with no deterministic kernel unless seeded refuses to run only while it is on.
    with pytest.raises(ValueError, match="determinism is enabled"):
        tf.nn.fractional_max_pool(tf.ones((1, 4, 4, 1)), [1.0, 1.44, 1.73, 1.0])


@pytest.fixture(scope="module")
def stage_folder(tmp_path_factory):
    """A folder the train stage runs in, on the tiny set."""
    return train_stage_folder(tmp_path_factory.mktemp("train"))


def train_stage(folder: Path, cpus: int, env: dict[str, str]) -> tuple[str, str]:
    """Run the train stage in `folder` on `cpus` logical CPUs with `env` set (and the kernel
    variables of the test process removed); return the model's md5 and the stage's stdout."""
    clean = {key: value for key, value in os.environ.items() if key not in kernels.VARIABLES}
    result = subprocess.run(
        [sys.executable, "-m", "stages.train"],
        cwd=folder,
        env={**clean, "PYTHONPATH": str(ROOT), **env},
        preexec_fn=lambda: os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:cpus]),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    model = (folder / "models" / "model.keras").read_bytes()
    return hashlib.md5(model).hexdigest(), result.stdout


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs 2 logical CPUs")
def test_the_train_stage_gives_one_model_whatever_the_cores_and_the_shell_set(stage_folder):
    digests = {
        "2 CPUs": train_stage(stage_folder, 2, {})[0],
        "1 CPU": train_stage(stage_folder, 1, {})[0],
        "2 CPUs, hostile variables": train_stage(stage_folder, 2, HOSTILE)[0],
        "1 CPU, ONEDNN_MAX_CPU_ISA=AVX": train_stage(
            stage_folder, 1, {"ONEDNN_MAX_CPU_ISA": "AVX"}
        )[0],
    }
    assert len(set(digests.values())) == 1, digests
    # oneDNN itself says it runs the AVX2 kernels, not the CPU's best (AVX-512 where it has it).
    _, verbose = train_stage(stage_folder, 2, {**HOSTILE, "ONEDNN_VERBOSE": "1"})
    assert "onednn_verbose,v1,info,cpu,isa:Intel AVX2\n" in verbose
