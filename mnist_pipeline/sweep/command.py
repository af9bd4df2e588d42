"""Run a grid of DVC experiments as Ray tasks, each a named experiment of this repository.

The grid is written as for `dvc exp run --queue`: `-S 'train.epochs=5,10' -S 'model.kind=dense,
convnet'` is 4 experiments. Each runs `dvc exp run` on the current commit in a clone of its own
(mnist_pipeline.sweep.trial), on Ray started here (workers = cores / --cpus-per-trial) or on the
cluster at --address, and comes back as an experiment of this repository: `dvc exp show`,
`dvc plots diff`, `mnist-compare A B` and `dvc exp apply` see it as any other. A point already
run on this commit (an experiment of its name) is not run again. docs/sweeps.md has the rest.
"""

import argparse
import contextlib
import hashlib
import json
import logging
import math
import os
import re
import shutil
import signal
import socket
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from mnist_pipeline.params import TrainParams, load_section
from mnist_pipeline.plumbing import cli, paths
from mnist_pipeline.plumbing.errors import PipelineError, one_line
from mnist_pipeline.sweep import trial
from mnist_pipeline.sweep.trial import Checkout, Outcome, Point

PROG = "mnist-sweep"
INSTALL_HINT = "Ray is not installed: pip install -e '.[cluster]' (or `make .venv/installed`)"
DEFAULT_METRIC = "test.accuracy"
# A name DVC takes for an experiment (a git ref's last part) and that reads well in a shell.
NAME_PREFIX = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
SCRATCH = Path(".dvc/tmp/sweep")  # the clones, where DVC's queue keeps its own (.dvc/tmp/exps)
POLL_SECONDS = 0.5  # how often the progress lines are looked for
CONNECT_SECONDS = 5  # for --address to answer
# Kill a dead worker's children too (the trial's `dvc exp run` and its stage), Ray's switch:
# https://docs.ray.io/en/latest/ray-core/user-spawn-processes.html
RAY_SUBREAPER = "RAY_kill_child_processes_on_worker_exit_with_raylet_subreaper"

log = logging.getLogger("mnist_pipeline.sweep")  # the command's name, however it starts


@dataclass(frozen=True)
class Row:
    """A point of the finished sweep, for the table."""

    point: Point
    state: str  # done, skipped (done before), failed, not run
    metric: float | None = None
    detail: str = ""


def grid(set_params: list[str], prefix: str) -> list[Point]:
    """Every point of the grid, by DVC's own expansion of `-S` values (a `,` list, `range()`,
    `choice()`), each named `<prefix>-<digest of its values>`: the same point, the same name.
    The two functions are the ones `dvc exp run --queue` calls (DVC has no public API for
    them), so a grid means here what it means there; constraints.txt pins DVC."""
    from dvc.utils.cli_parse import to_path_overrides
    from dvc.utils.hydra import get_hydra_sweeps

    try:
        sweeps = get_hydra_sweeps(to_path_overrides(set_params))
    except Exception as error:  # hydra's parse errors, DVC's InvalidArgumentError
        raise PipelineError(f"-S: {one_line(error)}") from error
    points = []
    for sweep in sweeps:
        overrides = tuple(f"{path}:{value}" for path, values in sweep.items() for value in values)
        digest = hashlib.sha256("\n".join(sorted(overrides)).encode()).hexdigest()[:8]
        points.append(Point(f"{prefix}-{digest}", overrides))
    return points


def describe(point: Point) -> str:
    """A point's values as `-S` takes them, without the params file's name."""
    return " ".join(override.split(":", 1)[1] for override in point.overrides)


def metric_of(metrics: dict, key: str) -> float:
    """`key` (dotted, as `test.accuracy`) of a reports/metrics.json."""
    value: object = metrics
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            raise PipelineError(f"--metric {key}: not in {paths.METRICS_FILE}")
        value = value[part]
    if not isinstance(value, int | float):
        raise PipelineError(f"--metric {key}: not a number in {paths.METRICS_FILE}")
    return float(value)


def command(*arguments: str, cwd: Path) -> str:
    """A git or dvc command's stdout; its failure as one line (a PipelineError)."""
    return trial.step(list(arguments), cwd, f"`{' '.join(arguments[:3])}` failed")


def dvc(*arguments: str, cwd: Path) -> str:
    return command(sys.executable, "-m", "dvc", *arguments, cwd=cwd)


def finished_experiments(root: Path) -> dict[str, dict]:
    """This commit's experiments that ran to the end, by name: their metrics."""
    [baseline] = [row for row in json.loads(dvc("exp", "show", "--json", cwd=root))
                  if row["rev"] != "workspace"]  # fmt: skip
    finished = {}
    for branch in baseline.get("experiments") or []:
        data = branch["revs"][0]["data"]
        executor = branch.get("executor") or {"state": "success"}
        if branch.get("name") and executor["state"] == "success":
            finished[branch["name"]] = data["metrics"][str(paths.METRICS_FILE)]["data"]
    return finished


def checkout_of(root: Path, git_remote: str | None) -> Checkout:
    """The commit to run, and how workers reach it: this repository and its DVC cache (one
    machine, or a filesystem they all share), or a git remote and the DVC remote."""
    commit = command("git", "rev-parse", "HEAD", cwd=root).strip()
    changed = command("git", "status", "--porcelain", "--untracked-files=no", cwd=root).split()
    if changed:
        log.warning("uncommitted changes are not part of the sweep: it runs commit %s", commit[:7])
    if git_remote is None:
        cache = dvc("cache", "dir", cwd=root).strip()
        return Checkout(str(root), commit, cache, str(root / SCRATCH))
    url = command("git", "remote", "get-url", git_remote, cwd=root).strip()
    return Checkout(url, commit, None)


def remote_trial(point: Point, checkout: Checkout, progress: object) -> Outcome:
    """The Ray task: say where it runs, then run the trial."""
    import ray

    # Ray's child-killing switch (RAY_SUBREAPER) also sets SIGCHLD to "ignore" in its workers,
    # where a child's exit status is then lost: a failed `dvc exp run` (or a failed stage under
    # it) would read as success. https://github.com/ray-project/ray/pull/42992
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    progress.put((point.name, f"running on node {ray.get_runtime_context().get_node_id()[:8]}"))
    return trial.run(point, checkout)


def check_reachable(address: str) -> None:
    """A HOST:PORT (or ray://HOST:PORT) address where nothing answers is one line at once:
    ray.init would retry it for minutes, printing its own warnings."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not (host and port.isdigit()):
        return  # "auto", or a form Ray itself judges
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_SECONDS).close()
    except OSError as error:
        raise PipelineError(
            f"--address {address}: nothing answers there ({one_line(error)}); is its head "
            "started (`ray start --head`, docs/sweeps.md)?"
        ) from error


def start_ray(address: str | None) -> None:
    """Ray here (every core) when no address is given, else the cluster at `address`."""
    import ray

    if address is None:
        os.environ.setdefault(RAY_SUBREAPER, "true")  # read by the raylet ray.init starts
    else:
        check_reachable(address)
    try:
        ray.init(
            address=address or "local",  # "local": never an already-running cluster
            num_cpus=os.cpu_count() if address is None else None,
            include_dashboard=False,
            log_to_driver=False,
            logging_level=logging.ERROR,  # not its warning that token authentication is on
        )
    except (ConnectionError, ValueError, RuntimeError) as error:
        raise PipelineError(f"--address {address}: {one_line(error)}") from error


def elapsed_line(start: float, name: str, what: str) -> None:
    log.info("[%6.1fs] %s %s", time.monotonic() - start, name, what)


def run_points(
    points: list[Point], checkout: Checkout, cpus: float, retries: int, metric: str
) -> list[Row]:
    """Each point as a Ray task; a line per change of state. Ctrl-C cancels what has not
    finished and returns the rows so far, the rest `not run`."""
    import ray
    from ray.util.queue import Empty, Queue

    start = time.monotonic()
    progress = Queue(actor_options={"num_cpus": 0})
    task = ray.remote(remote_trial).options(num_cpus=cpus, max_retries=retries)
    pending = {}
    for point in points:
        pending[task.remote(point, checkout, progress)] = point
        elapsed_line(start, point.name, f"queued  {describe(point)}")
    rows: list[Row] = []
    try:
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=POLL_SECONDS)
            while not progress.empty():
                try:
                    elapsed_line(start, *progress.get_nowait())
                except Empty:
                    break
            for ref in ready:
                rows.append(collect(pending.pop(ref), ref, metric))
                elapsed_line(start, rows[-1].point.name, f"{rows[-1].state}  {rows[-1].detail}")
    except KeyboardInterrupt:
        for ref in pending:
            ray.cancel(ref, force=True)
        log.warning("interrupted: %d point(s) not run", len(pending))
        rows.extend(Row(point, "not run") for point in pending.values())
    return rows


def collect(point: Point, ref: object, metric: str) -> Row:
    """A finished task's row: its metric, or its one-line reason (Ray's, if the task itself
    failed: a worker that died more times than --retries)."""
    import ray

    try:
        outcome: Outcome = ray.get(ref)
    except ray.exceptions.RayError as error:
        return Row(point, "failed", detail=one_line(error).splitlines()[0][:200])
    if outcome.error is not None:
        return Row(point, "failed", detail=outcome.error)
    value = metric_of(outcome.metrics or {}, metric)
    return Row(point, "done", value, f"{metric}={value:g} in {outcome.seconds:.1f}s")


def table(rows: Iterable[Row], metric: str, minimize: bool) -> str:
    """Every point, best first (then failed, then not run), and the command to apply the best."""
    order = {"done": 0, "skipped": 0, "failed": 1, "not run": 2}

    def key(row: Row) -> tuple:
        value = row.metric if row.metric is not None else math.nan
        return (order[row.state], value if minimize else -value)

    ranked = sorted(rows, key=key)
    lines = [f"{'experiment':<16} {'state':<8} {metric:>14}  params"]
    for row in ranked:
        value = "" if row.metric is None else f"{row.metric:.6g}"
        params = describe(row.point)
        reason = f"  ({row.detail})" if row.state == "failed" else ""
        lines.append(f"{row.point.name:<16} {row.state:<8} {value:>14}  {params}{reason}")
    best = [row for row in ranked if row.metric is not None]
    if best:
        lines.append(f"Best: {best[0].point.name}. Bring it into the workspace with:")
        lines.append(f"  dvc exp apply {best[0].point.name}")
    return "\n".join(lines)


def on_ray(
    points: list[Point], checkout: Checkout, args: argparse.Namespace, cpus: float
) -> list[Row]:
    """Start Ray or join the cluster, run `points` there and leave it."""
    import ray

    # Ray's driver prints the cluster's error messages ("A worker died ...") to sys.stdout,
    # where the table goes: to stderr with them, beside the progress lines.
    with contextlib.redirect_stdout(sys.stderr):
        start_ray(args.address)
        try:
            total = ray.cluster_resources().get("CPU", 0)
            log.info("Ray %s: %g CPUs, %g per trial: up to %d trial(s) at a time",
                     args.address or "started here", total, cpus, total // cpus)  # fmt: skip
            return run_points(points, checkout, cpus, args.retries, args.metric)
        finally:
            ray.shutdown()


def main(args: argparse.Namespace) -> int:
    try:
        import ray  # noqa: F401 (only whether it is there)
    except ImportError as error:
        raise PipelineError(INSTALL_HINT) from error
    if not NAME_PREFIX.fullmatch(args.name_prefix):
        raise PipelineError(f"--name-prefix {args.name_prefix!r}: letters, digits, _ and - only")
    root = Path(command("git", "rev-parse", "--show-toplevel", cwd=Path.cwd()).strip())
    points = grid(args.set_param, args.name_prefix)
    checkout = checkout_of(root, args.git_remote)
    finished = finished_experiments(root)
    rows = [
        Row(point, "skipped", metric_of(finished[point.name], args.metric), "done before")
        for point in points
        if point.name in finished
    ]
    for row in rows:
        log.info("%s skipped: done before on this commit", row.point.name)
    to_run = [point for point in points if point.name not in finished]
    if to_run:
        threads = load_section(TrainParams, root / paths.PARAMS_FILE).threads
        try:
            rows += on_ray(to_run, checkout, args, args.cpus_per_trial or threads)
        finally:
            shutil.rmtree(root / SCRATCH, ignore_errors=True)
        if args.git_remote is not None:
            for row in rows:
                if row.state == "done":
                    dvc("exp", "pull", args.git_remote, row.point.name, cwd=root)
    print(table(rows, args.metric, args.minimize))
    if any(row.state == "not run" for row in rows):
        return 130
    return 1 if any(row.state == "failed" for row in rows) else 0


def positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number of CPUs above 0, got {text!r}")
    return value


def console() -> None:
    """The `mnist-sweep` command."""
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "-S", "--set-param", action="append", required=True, metavar="[FILE:]KEY=VALUES",
        help="a param and its values, as `dvc exp run --queue -S`: 'train.epochs=5,10'",
    )  # fmt: skip
    parser.add_argument(
        "--address", default=None,
        help="a running Ray cluster (auto, HOST:PORT or ray://HOST:PORT); default: start Ray "
        "here for this sweep",
    )  # fmt: skip
    parser.add_argument(
        "--git-remote", default=None, metavar="REMOTE",
        help="workers clone this git remote (the commit must be pushed) and pull and push data "
        "through the DVC remote; default: this repository and its DVC cache (one machine)",
    )  # fmt: skip
    parser.add_argument(
        "--cpus-per-trial", type=positive, default=None, metavar="N",
        help="CPUs Ray reserves for each trial (default: train.threads of params.yaml); "
        "scheduling only: the trial trains with train.threads all the same",
    )  # fmt: skip
    parser.add_argument("--retries", type=cli.integer_in(0, 10), default=2,
                        help="times Ray reruns a trial whose worker died (default: 2)")  # fmt: skip
    parser.add_argument("--name-prefix", default="sweep",
                        help="names are PREFIX-<8 hex digits> (default: sweep)")  # fmt: skip
    parser.add_argument(
        "--metric",
        default=DEFAULT_METRIC,
        help=f"key of {paths.METRICS_FILE} to rank by (default: %(default)s)",
    )
    parser.add_argument("--minimize", action="store_true", help="the lowest value is best")
    cli.run(main, parser)


if __name__ == "__main__":
    console()
