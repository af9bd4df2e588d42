"""mnist-sweep: a grid of DVC experiments as Ray tasks, on a two-node Ray cluster on loopback
and on Ray started by the command itself."""

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

from mnist_pipeline.plumbing.errors import PipelineError
from mnist_pipeline.sweep import command as sweep
from mnist_pipeline.sweep.trial import Point, failure_line
from tests.support.project import DVC, ENV, ROOT, output, run
from tests.support.ray_cluster import Cluster, free_port, ray_env, running_cluster, short_temp_dir
from tests.support.remote import aws_env, clone

SWEEP = [sys.executable, "-m", "mnist_pipeline.sweep"]
WAIT = 420  # seconds for a whole sweep on the loaded 2-core machine
RATES = ["0.0005", "0.002"]  # none the baseline's 0.001: each one trains
EPOCHS = ["1", "2"]
GRID = ["-S", f"train.learning_rate={','.join(RATES)}", "-S", f"train.epochs={','.join(EPOCHS)}"]
BAD_RATE_REASON = "train.learning_rate must be greater than 0, got -1"
LINE = re.compile(r"\[ *[\d.]+s\] (\S+) (queued|running on node (\w+)|done|failed)\s*(.*)")


def experiments(repo) -> dict[str, dict]:
    """The baseline's experiments by name: train params, metrics and the md5 of each out."""
    [baseline] = [row for row in json.loads(output(repo, DVC, "exp", "show", "--json"))
                  if row["rev"] != "workspace"]  # fmt: skip
    found = {}
    for branch in baseline["experiments"] or []:
        data = branch["revs"][0]["data"]
        found[branch["name"]] = {
            "train": data["params"]["params.yaml"]["data"]["train"],
            "metrics": data["metrics"]["reports/metrics.json"]["data"],
            "outs": {path: out["hash"] for path, out in data["outs"].items()},
        }
    return found


def events(log: str) -> list[tuple[str, str, str]]:
    """(name, state, node or detail) of each progress line."""
    found = []
    for line in log.splitlines():
        match = LINE.search(line)
        if match:
            name, state, node, detail = match.groups()
            found.append((name, state.split()[0], node or detail))
    return found


def start_sweep(repo, *arguments: str, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [*SWEEP, *arguments],
        cwd=repo,
        env={**os.environ, **ENV, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen) -> tuple[int, str, str]:
    try:
        out, err = process.communicate(timeout=WAIT)
    except subprocess.TimeoutExpired:
        kill_tree(process.pid)
        out, err = process.communicate()
        pytest.fail(f"the sweep took over {WAIT} s:\n{out}\n{err}")
    return process.returncode, out, err


def kill_tree(pid: int) -> None:
    """The sweep and everything it started (embedded Ray too)."""
    try:
        parent = psutil.Process(pid)
    except psutil.NoSuchProcess:
        return
    for process in [*parent.children(recursive=True), parent]:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()


def trial_processes(ancestors: set[int]) -> list[psutil.Process]:
    """`dvc exp run` of a trial, started by a Ray worker below one of `ancestors`."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        command = process.info["cmdline"] or []
        if command[1:5] == ["-m", "dvc", "exp", "run"]:
            try:
                if ancestors & {parent.pid for parent in process.parents()}:
                    found.append(process)
            except psutil.NoSuchProcess:
                pass
    return found


# Units: the grid, the failure line, the table.


def test_the_grid_is_dvcs_product_of_the_values_and_each_point_keeps_its_name():
    points = sweep.grid(["train.epochs=1,2", "model.kind=dense,convnet"], "sweep")
    assert [point.overrides for point in points] == [
        ("params.yaml:train.epochs=1", "params.yaml:model.kind=dense"),
        ("params.yaml:train.epochs=1", "params.yaml:model.kind=convnet"),
        ("params.yaml:train.epochs=2", "params.yaml:model.kind=dense"),
        ("params.yaml:train.epochs=2", "params.yaml:model.kind=convnet"),
    ]
    names = [point.name for point in points]
    assert len(set(names)) == 4 and all(re.fullmatch(r"sweep-[0-9a-f]{8}", n) for n in names)
    # The same point however the -S are ordered, and range() as DVC's queue reads it.
    again = sweep.grid(["model.kind=convnet,dense", "train.epochs=range(1,3)"], "sweep")
    assert sorted(point.name for point in again) == sorted(names)
    assert [point.name for point in sweep.grid(["train.epochs=1"], "x")][0].startswith("x-")


@pytest.mark.parametrize("bad", ["train.epochs", "train.epochs=(1,"])
def test_a_grid_dvc_cannot_read_is_one_line_naming_the_option(bad):
    with pytest.raises(PipelineError, match=r"^-S: .*") as error:
        sweep.grid([bad], "sweep")
    assert "\n" not in str(error.value)


def test_the_failure_line_is_the_stages_own_reason():
    dvc_output = (
        "Reproducing experiment 'x'\nRunning stage 'train':\n> python -m stages.train\n"
        "train: error: params.yaml: train.epochs must be greater than 0, got -1\n"
        "ERROR: failed to reproduce 'train': failed to run: python -m stages.train, exited with 1\n"
    )
    assert failure_line(dvc_output) == (
        "train: error: params.yaml: train.epochs must be greater than 0, got -1"
    )
    assert failure_line("ERROR: unexpected error\n\n") == "ERROR: unexpected error"
    assert failure_line("") == "failed with no output"


def test_the_table_puts_the_best_first_then_failures_then_what_did_not_run():
    point = {name: Point(name, (f"params.yaml:train.epochs={n}",))
             for n, name in enumerate(["a", "b", "c", "d", "e"])}  # fmt: skip
    rows = [
        sweep.Row(point["a"], "failed", detail="bad"),
        sweep.Row(point["b"], "done", 0.91),
        sweep.Row(point["c"], "not run"),
        sweep.Row(point["d"], "skipped", 0.95),
        sweep.Row(point["e"], "done", 0.93),
    ]
    order = [line.split()[0] for line in sweep.table(rows, "m", False).splitlines()[1:6]]
    assert order == ["d", "e", "b", "a", "c"]
    assert sweep.table(rows, "m", False).splitlines()[-1] == "  dvc exp apply d"
    lowest = [line.split()[0] for line in sweep.table(rows, "m", True).splitlines()[1:4]]
    assert lowest == ["b", "e", "d"]
    assert "apply" not in sweep.table(rows[:1], "m", False)  # nothing done, nothing to apply
    assert sweep.table(rows[:2], "m", False).splitlines()[-1] == "  dvc exp apply b"


def test_without_ray_the_command_says_in_one_line_how_to_install_it(tmp_path):
    hide_ray = (
        "import sys; sys.modules['ray'] = None; from mnist_pipeline.sweep.command import console; "
    )
    result = subprocess.run(
        [sys.executable, "-c", hide_ray + "sys.argv[0] = 'mnist-sweep'; console()",
         "-S", "train.epochs=1,2"],
        cwd=tmp_path, capture_output=True, text=True, env={**os.environ, **ENV},
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr == f"mnist-sweep: error: {sweep.INSTALL_HINT}\n"
    assert "pip install -e '.[cluster]'" in result.stderr


def test_an_address_where_nothing_answers_is_one_line_at_once():
    port = free_port()  # free: nothing listens there
    with pytest.raises(PipelineError, match=rf"^--address 127.0.0.1:{port}: nothing answers"):
        sweep.check_reachable(f"127.0.0.1:{port}")
    with pytest.raises(PipelineError, match="nothing answers"):
        sweep.check_reachable(f"ray://127.0.0.1:{port}")
    sweep.check_reachable("auto")  # Ray's own to find


# End to end: a real cluster, and Ray started by the command.


@pytest.mark.e2e
def test_a_grid_on_a_two_node_cluster_survives_a_killed_worker_and_matches_dvc_exp_run(
    reproduced_project, ray_cluster: Cluster, tmp_path
):
    repo = reproduced_project
    process = start_sweep(
        repo, *GRID, "--address", ray_cluster.address, "--cpus-per-trial", "1",
        env=ray_cluster.env,
    )  # fmt: skip
    killed: list[psutil.Process] = []

    def kill_first_worker() -> None:
        """SIGKILL to the Ray worker of the first trial seen running, mid-trial."""
        deadline = time.monotonic() + WAIT
        while process.poll() is None and time.monotonic() < deadline:
            trials = trial_processes(ray_cluster.pids())
            if trials:
                worker = trials[0].parent()
                killed.extend([trials[0], worker])
                worker.kill()
                return
            time.sleep(0.2)

    killer = threading.Thread(target=kill_first_worker)
    killer.start()
    try:
        status, out, err = finish(process)
    finally:
        killer.join()
    assert status == 0, f"{out}\n{err}"
    assert not (repo / sweep.SCRATCH).exists()  # the clones, the killed one's too
    assert len(killed) == 2, "no trial was seen running"
    gone = not killed[0].is_running() or killed[0].status() == psutil.STATUS_ZOMBIE
    assert gone, "the killed worker's `dvc exp run` went on"

    seen = events(err)
    done = {name for name, state, _ in seen if state == "done"}
    assert len(done) == 4 and not any(state == "failed" for _, state, _ in seen)
    nodes = {node for _, state, node in seen if state == "running"}
    assert len(nodes) == 2, err  # both nodes ran trials
    runs = [name for name, state, _ in seen if state == "running"]
    assert len(runs) == 5, err  # one point ran twice: Ray's retry of the killed worker

    found = experiments(repo)
    assert set(found) == done  # each point once, nothing of the killed attempt
    grid = {(rate, epochs) for rate in RATES for epochs in EPOCHS}
    assert {(str(e["train"]["learning_rate"]), str(e["train"]["epochs"]))
            for e in found.values()} == grid  # fmt: skip
    assert all(e["metrics"]["test"]["accuracy"] > 0 for e in found.values())
    # The table: every point, and the command to apply the best.
    assert sorted(line.split()[0] for line in out.splitlines()[1:5]) == sorted(found), out
    best = out.splitlines()[-1].split()[-1]
    assert out.splitlines()[-1] == f"  dvc exp apply {best}" and best in found

    # Experiments as any other: mnist-compare and dvc plots diff name them.
    a, b = sorted(found)[:2]
    compared = output(repo, sys.executable, "-m", "mnist_pipeline.compare", a, b,
                      "--out", str(tmp_path / "compare.png"))  # fmt: skip
    assert f"A: {a} (revision" in compared and f"B: {b} (revision" in compared
    plots = output(repo, DVC, "plots", "diff", a, b, "--json")
    assert f'"{a}"' in plots and f'"{b}"' in plots

    # The same bytes as a plain `dvc exp run` of the same params in the workspace.
    [name] = [name for name, e in found.items()
              if e["train"]["learning_rate"] == 0.002 and e["train"]["epochs"] == 2]  # fmt: skip
    run(repo, DVC, "exp", "run", "-n", "plain", "-S", "train.learning_rate=0.002",
        "-S", "train.epochs=2")  # fmt: skip
    plain = experiments(repo)["plain"]
    for model in ("models/model.keras", "models/model.tflite"):
        assert found[name]["outs"][model] == plain["outs"][model]
    assert found[name]["metrics"] == plain["metrics"]
    # And the experiment is the workspace's with `dvc exp apply`, its model out of the cache.
    run(repo, DVC, "exp", "apply", name)
    assert output(repo, DVC, "status").strip() == "Data and pipelines are up to date."


@pytest.mark.e2e
def test_embedded_ray_fails_a_bad_point_alone_and_a_rerun_after_ctrl_c_skips_what_is_done(
    reproduced_project,
):
    repo = reproduced_project
    temp = short_temp_dir()
    env = {**ray_env(temp), "RAY_TMPDIR": str(temp)}
    grid = ["-S", "train.learning_rate=-1,0.002,0.004"]  # -1: out of range
    started: list[subprocess.Popen] = []
    try:
        # Ctrl-C once a point is done: it is kept, the rest are listed as not run.
        process = start_sweep(repo, *grid, env=env)
        started.append(process)
        lines = []
        for line in process.stderr:
            lines.append(line)
            if " done " in line:
                process.send_signal(signal.SIGINT)
                break
        status, out, err = finish(process)
        err = "".join(lines) + err
        assert status == 130, f"{out}\n{err}"
        assert not (repo / sweep.SCRATCH).exists()
        done = {name for name, state, _ in events(err) if state == "done"}
        assert len(done) == 1
        assert set(experiments(repo)) == done
        not_run = [line.split()[0] for line in out.splitlines() if " not run " in line]
        assert len(not_run) >= 1 and done.isdisjoint(not_run)
        assert "not run" in err

        # The same sweep again: the done point skipped, the bad one failing alone, in a line.
        started.append(start_sweep(repo, *grid, env=env))
        status, out, err = finish(started[-1])
        assert status == 1, f"{out}\n{err}"
        [skipped] = done
        assert f"{skipped} skipped: done before" in err
        seen = events(err)
        assert skipped not in {name for name, _, _ in seen}
        [failed] = [detail for _, state, detail in seen if state == "failed"]
        assert failed == f"dvc exp run: train: error: params.yaml: {BAD_RATE_REASON}"
        assert len(experiments(repo)) == 2
        assert {e["train"]["learning_rate"] for e in experiments(repo).values()} == {0.002, 0.004}
        # Ray started here with every core, a trial taking train.threads (2) of them.
        at_a_time = os.cpu_count() // 2
        assert f"Ray started here: {os.cpu_count()} CPUs, 2 per trial: up to {at_a_time}" in err
    finally:
        for process in started:  # and its embedded Ray, should the test fail midway
            kill_tree(process.pid)
        shutil.rmtree(temp, ignore_errors=True)


@pytest.mark.e2e
def test_through_a_git_remote_and_the_dvc_remote_as_between_machines(shared, s3, tmp_path):
    """Workers that share nothing with the user's repository but the git remote (origin) and
    the DVC remote (S3, its key in each node's environment)."""
    repo = clone(shared.origin, tmp_path / "b")  # no DVC cache: nothing of A's but origin's
    with running_cluster(tmp_path, aws_env(s3)) as cluster:
        status, out, err = finish(start_sweep(
            repo, "-S", f"train.learning_rate={','.join(RATES)}", "--git-remote", "origin",
            "--address", cluster.address, "--cpus-per-trial", "1",
            env={**cluster.env, **aws_env(s3)},
        ))  # fmt: skip
    assert status == 0, f"{out}\n{err}"
    found = experiments(repo)
    assert sorted(str(e["train"]["learning_rate"]) for e in found.values()) == RATES
    assert set(output(repo, "git", "ls-remote", str(shared.origin), "refs/exps/*").split()[1::2])
    # Each one whole here: its model from the DVC remote, as `dvc exp apply` checks it out.
    name = sorted(found)[0]
    run(repo, DVC, "exp", "apply", name)
    assert output(repo, DVC, "status").strip() == "Data and pipelines are up to date."


def test_the_docs_ray_start_lines_are_the_tests_less_their_ports_and_folders():
    """docs/sweeps.md's cluster: the variables it exports are the ones the tests' nodes run with,
    and each option of its `ray start` lines is one the tests' nodes are started with."""
    page = (ROOT / "docs/sweeps.md").read_text()
    exported = re.findall(r"^\$ export (.*?)(?:\s+#.*)?$", page, re.MULTILINE)
    names = {pair.split("=")[0] for line in exported for pair in line.split()}
    assert names == set(ray_env(Path("/tmp"))) - {"RAY_USAGE_STATS_ENABLED", "RAY_TMPDIR"}
    starts = re.findall(r"^\$ ray start (.*?)(?:\s+#.*)?$", page, re.MULTILINE)
    assert len(starts) == 2
    source = (ROOT / "tests/support/ray_cluster.py").read_text()
    for option in {word for line in starts for word in line.split() if word.startswith("--")}:
        assert f'"{option}"' in source, option
