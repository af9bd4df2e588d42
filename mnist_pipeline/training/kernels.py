"""One kernel path and one thread count for TensorFlow, so that training gives the same bytes on
every x86-64 CPU with AVX2, whatever its vendor, instruction sets and core count.

What TensorFlow 2.21 does on its own, measured (docs/reproducibility.md):
- It turns its oneDNN graph rewrites on only on CPUs with AVX-512 VNNI, BF16 or AMX; elsewhere
  matrix products run as Eigen contractions, whose blocks follow the CPU's cache sizes.
- oneDNN picks its kernels by the best instruction set the CPU has (AVX-512 or AVX2).
- The intra-op thread count is the number of usable cores, and 4 threads sum differently than 2.

Pinned: the oneDNN rewrites on everywhere, oneDNN capped at AVX2 (every Intel CPU since 2013,
every AMD Zen), strict float32 math, and the thread pools sized by `train.threads`. TensorFlow
reads these variables once, when it loads: `pin` must run before the first
`import tensorflow`, and `check_pinned` reads back what the loaded TensorFlow uses.
"""

import logging
import os
import platform
import subprocess
import sys
from pathlib import Path

from mnist_pipeline.params import InstructionSet
from mnist_pipeline.plumbing.errors import PipelineError

log = logging.getLogger(__name__)

# The CPU flags (as Linux names them) that oneDNN's AVX2 kernels need.
AVX2_FLAGS = ("avx2", "fma")
CPU_INFO = Path("/proc/cpuinfo")

# Variables that would steer the kernels if left as a user's shell set them.
UNPINNED = (
    "DNNL_MAX_CPU_ISA",  # oneDNN's older name of ONEDNN_MAX_CPU_ISA
    "DNNL_DEFAULT_FPMATH_MODE",
    "TENSORFLOW_USE_CUSTOM_CONTRACTION_KERNEL",
)

# What this process pinned before TensorFlow loaded: (threads, instruction set), or None.
pinned_before_load: tuple[int, InstructionSet] | None = None


def pinned_environment(threads: int, instruction_set: InstructionSet) -> dict[str, str]:
    """The environment variables that fix TensorFlow's kernels and thread pools."""
    threading = {"TF_NUM_INTRAOP_THREADS": str(threads), "TF_NUM_INTEROP_THREADS": str(threads)}
    if instruction_set == "native":  # TensorFlow's own choices: fastest, this CPU's bytes
        return threading
    return threading | {
        "TF_ENABLE_ONEDNN_OPTS": "1",
        "ONEDNN_MAX_CPU_ISA": "AVX2",
        "ONEDNN_DEFAULT_FPMATH_MODE": "STRICT",  # no silent bfloat16 or TF32 arithmetic
    }


# Every variable `pin` sets or removes (avx2 sets a superset of native's).
VARIABLES = (*pinned_environment(1, "avx2"), *UNPINNED)


def pin(threads: int, instruction_set: InstructionSet = "avx2") -> None:
    """Set the environment that fixes TensorFlow's kernel path, before TensorFlow loads.

    Raises PipelineError if TensorFlow is already loaded with other settings, or if this CPU
    cannot run the AVX2 path.
    """
    global pinned_before_load
    if instruction_set == "avx2":
        check_avx2()
    if "tensorflow" in sys.modules:
        if pinned_before_load != (threads, instruction_set):
            raise PipelineError(
                f"TensorFlow was loaded before its kernel path was pinned (train.threads "
                f"{threads}, train.instruction_set {instruction_set}): pin in a new process, "
                "before `import tensorflow`"
            )
        return
    wanted = pinned_environment(threads, instruction_set)
    if instruction_set == "avx2":
        for name in UNPINNED:
            os.environ.pop(name, None)
    os.environ.update(wanted)
    pinned_before_load = (threads, instruction_set)
    log.debug("kernel path: %s", " ".join(f"{name}={value}" for name, value in wanted.items()))


def check_avx2() -> None:
    """Raise PipelineError unless this CPU runs oneDNN's AVX2 kernels."""
    machine = platform.machine().lower()
    if machine not in ("x86_64", "amd64"):
        missing = f"a {machine} CPU, not x86-64"
    else:
        flags = cpu_flags()
        if flags is None:  # not Linux: oneDNN caps itself at what the CPU has
            return
        absent = [flag for flag in AVX2_FLAGS if flag not in flags]
        if not absent:
            return
        missing = f"this CPU lacks {' and '.join(flag.upper() for flag in absent)}"
    raise PipelineError(
        f"train.instruction_set: avx2 needs an x86-64 CPU with AVX2 and FMA ({missing}); set "
        "train.instruction_set: native to train with this CPU's own kernels (results then differ "
        "from the committed ones, docs/reproducibility.md)"
    )


def cpu_info() -> dict[str, str] | None:
    """The first CPU's fields as /proc/cpuinfo lists them ("flags", "model name", ...); None
    where it cannot be read (not Linux)."""
    try:
        text = CPU_INFO.read_text()
    except OSError:
        return None
    fields: dict[str, str] = {}
    for line in text.splitlines():
        name, colon, value = line.partition(":")
        if colon:
            fields.setdefault(name.strip(), value.strip())
    return fields


def cpu_flags() -> set[str] | None:
    """The CPU's feature flags as Linux lists them, None where /proc/cpuinfo is not there."""
    info = cpu_info()
    return None if info is None else set(info.get("flags", "").split())


def cpu_model() -> str:
    """The CPU's model name, as /proc/cpuinfo gives it (the platform's processor elsewhere)."""
    return (cpu_info() or {}).get("model name") or platform.processor() or platform.machine()


def check_pinned(threads: int, instruction_set: InstructionSet) -> None:
    """Raise PipelineError unless `pin` set this path before TensorFlow loaded and its settings
    still hold: the variables TensorFlow read at load, and the thread pools by TensorFlow's rule
    (tf.config's setting, else its variable). oneDNN's own account of its instruction set is
    `probe`'s, in a process of its own."""
    import tensorflow as tf

    problems = [
        f"{name}={os.environ.get(name)}"
        for name, value in pinned_environment(threads, instruction_set).items()
        if os.environ.get(name) != value
    ]
    # TensorFlow's rule: a pool size set through tf.config wins, else its variable's.
    in_use = {
        "intra-op": tf.config.threading.get_intra_op_parallelism_threads()
        or os.environ.get("TF_NUM_INTRAOP_THREADS", "one per core"),
        "inter-op": tf.config.threading.get_inter_op_parallelism_threads()
        or os.environ.get("TF_NUM_INTEROP_THREADS", "one per core"),
    }
    problems += [f"{n} {pool} threads" for pool, n in in_use.items() if str(n) != str(threads)]
    if pinned_before_load != (threads, instruction_set):
        problems.append("not pinned so before TensorFlow loaded")
    if problems:
        raise PipelineError(
            f"TensorFlow does not run as train.threads {threads} and train.instruction_set "
            f"{instruction_set} ask ({'; '.join(problems)}): kernels.pin must run before "
            "TensorFlow loads"
        )


# One matrix product in a fresh process on the pinned path, with oneDNN saying what it runs.
PROBE = """
import sys
from mnist_pipeline.training import kernels
kernels.pin(int(sys.argv[1]), sys.argv[2])
import tensorflow as tf
kernels.check_pinned(int(sys.argv[1]), sys.argv[2])
tf.linalg.matmul(tf.ones((64, 64)), tf.ones((64, 64)))
"""


def probe(threads: int, instruction_set: InstructionSet) -> dict[str, str]:
    """What oneDNN runs in a process pinned so, in its own words (ONEDNN_VERBOSE): its version
    and instruction set, e.g. {"oneDNN": "v3.7.3", "isa": "Intel AVX2"}. Empty where that process
    failed or TensorFlow ran no oneDNN kernel (`native` on CPUs without AVX-512)."""
    try:
        result = subprocess.run(
            [sys.executable, "-c", PROBE, str(threads), instruction_set],
            env={**os.environ, "ONEDNN_VERBOSE": "1", "TF_CPP_MIN_LOG_LEVEL": "3"},
            capture_output=True,
            text=True,
            timeout=120,
        )
    except subprocess.TimeoutExpired:
        return {}
    facts = {}
    for line in result.stdout.splitlines():
        fields = line.split(",")
        if fields[0] != "onednn_verbose" or "info" not in fields:
            continue
        for field in fields:
            name, colon, value = field.partition(":")
            if colon and name == "isa":
                facts[name] = value
            elif field.startswith("oneDNN v"):
                facts["oneDNN"] = field.split()[1]
    return facts
