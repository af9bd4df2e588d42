"""Does this machine reproduce the committed results? Reruns every stage in a scratch clone of the
repository (the workspace's own files are not touched) and compares each output with the md5 that
the committed dvc.lock records. Prints "reproduced byte for byte", or each output that differs,
`dvc metrics diff` against the committed run and the machine facts that explain it; exits 1 then.

The scratch clone holds the workspace's tracked and untracked files as they are now (a param
edited by hand is rerun as edited) and shares the workspace's DVC cache: a plain `dvc repro` in
the workspace afterwards restores the data it made from DVC's run cache instead of fetching and
preprocessing again (not the model: the run cache skips a stage with an uncached output, as train's
history CSVs are: treeverse/dvc#8738).
"""

import argparse
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from ruamel.yaml import YAML

from mnist_pipeline.params import TrainParams, load_section
from mnist_pipeline.plumbing import cli, paths
from mnist_pipeline.plumbing.errors import PipelineError
from mnist_pipeline.training import kernels

PROG = "mnist-reproduce"
BIN = Path(sys.executable).parent

log = logging.getLogger(__name__)


def run(command: list[str], cwd: Path, quiet: bool = True) -> str:
    """Run `command` in `cwd` with this environment's `dvc` and `python` first on PATH; return
    its output, or raise PipelineError with its last lines if it fails."""
    result = subprocess.run(
        command,
        cwd=cwd,
        env={**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"},
        stdout=subprocess.PIPE if quiet else None,
        stderr=subprocess.STDOUT if quiet else None,
        text=True,
    )
    if result.returncode != 0:
        tail = " | ".join((result.stdout or "").strip().splitlines()[-3:])
        raise PipelineError(
            f"`{' '.join(command)}` failed in {cwd} (exit {result.returncode})"
            + (f": {tail}" if tail else "")
        )
    return result.stdout or ""


def recorded_outputs(lock_text: str) -> dict[str, str]:
    """Each output's md5 as a dvc.lock records it, by path."""
    lock = YAML(typ="safe").load(lock_text) or {}
    return {
        out["path"]: out.get("md5", "")
        for stage in lock.get("stages", {}).values()
        for out in stage.get("outs", [])
    }


def differences(committed: dict[str, str], reproduced: dict[str, str]) -> list[str]:
    """One line per output whose md5 differs, or that one run has and the other not."""
    lines = []
    for path in sorted(committed.keys() | reproduced.keys()):
        before, after = committed.get(path, "none"), reproduced.get(path, "none")
        if before != after:
            lines.append(f"{path}: md5 {after} here, {before} committed")
    return lines


def make_scratch_clone(workspace: Path, clone: Path) -> None:
    """Clone `workspace`'s repository into `clone`, with the workspace's tracked and untracked
    (not ignored) files as they are now, and its DVC cache as the clone's."""
    run(["git", "clone", "--quiet", "--no-checkout", str(workspace), str(clone)], workspace)
    head = run(["git", "rev-parse", "HEAD"], workspace).strip()
    run(["git", "checkout", "--quiet", head], clone)
    # -z: names unquoted, whatever their characters; --no-renames: a rename is its two paths.
    changed = run(["git", "diff", "--name-only", "-z", "--no-renames", "HEAD"], workspace)
    untracked = run(["git", "ls-files", "-z", "--others", "--exclude-standard"], workspace)
    for name in filter(None, (changed + untracked).split("\0")):
        source, target = workspace / name, clone / name
        if source.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
        else:  # deleted in the workspace
            target.unlink(missing_ok=True)
    cache = run([str(BIN / "dvc"), "cache", "dir"], workspace).strip()
    run([str(BIN / "dvc"), "config", "--local", "cache.dir", cache], clone)


def usable_cpus() -> int:
    """The logical CPUs this process may run on (all of them where the OS does not say)."""
    affinity = getattr(os, "sched_getaffinity", None)  # Linux only
    return len(affinity(0)) if affinity else os.cpu_count() or 1


def machine_facts(train: TrainParams) -> list[str]:
    """What steers the trained bytes on this machine: the CPU, the pinned path and its threads."""
    flags = kernels.cpu_flags() or set()
    relevant = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile")
    in_force = kernels.probe(train.threads, train.instruction_set)
    return [
        f"CPU: {kernels.cpu_model()} ({usable_cpus()} usable logical CPUs; "
        f"flags: {' '.join(flag for flag in relevant if flag in flags) or 'unknown'})",
        f"kernel path: train.instruction_set {train.instruction_set}, train.threads "
        f"{train.threads}; oneDNN {in_force.get('oneDNN', '?')} runs {in_force.get('isa', '?')}",
    ]


def main(args: argparse.Namespace) -> int:
    workspace = Path.cwd()
    if not (workspace / paths.DVC_LOCK_FILE).is_file() or not (workspace / ".git").exists():
        raise PipelineError(f"{workspace}: not the project's root (no dvc.lock and .git here)")
    committed = recorded_outputs(run(["git", "show", f"HEAD:{paths.DVC_LOCK_FILE}"], workspace))
    with tempfile.TemporaryDirectory(prefix="mnist-reproduce-") as scratch:
        clone = Path(scratch) / "project"
        log.info("rerunning every stage in %s", clone)
        make_scratch_clone(workspace, clone)
        run([str(BIN / "dvc"), "repro", "--force"], clone, quiet=args.quiet)
        reproduced = recorded_outputs((clone / paths.DVC_LOCK_FILE).read_text())
        differing = differences(committed, reproduced)
        metrics = run([str(BIN / "dvc"), "metrics", "diff", "HEAD"], clone) if differing else ""
        train = load_section(TrainParams, clone / paths.PARAMS_FILE)
    facts = machine_facts(train)
    if not differing:
        print(f"reproduced byte for byte: all {len(committed)} outputs of dvc.lock")
        print("\n".join(facts))
        return 0
    print(f"NOT reproduced: {len(differing)} of {len(committed)} outputs differ")
    print("\n".join(differing))
    print(metrics.rstrip() or "dvc metrics diff: no metric changed")
    print("\n".join(facts))
    return 1


def console() -> None:
    """The `mnist-reproduce` console script."""
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__)
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="hide the stages' output (shown on failure)"
    )
    cli.run(main, parser)


if __name__ == "__main__":
    console()
