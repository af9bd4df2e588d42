"""A parallel sweep: a grid of experiments queued in one command and run by two queue workers,
each in its own copy of the repository."""

import json
import time

import pytest

from tests.support.project import DVC, output, run, set_params, stages_run

pytestmark = pytest.mark.e2e

RATES = [0.0005, 0.002, 0.004]  # none the baseline's 0.001: each one trains
WAIT = 300  # seconds for the whole queue
POLL = 2  # seconds between looks at the queue


def queued_experiments(repo) -> dict[str, dict]:
    """Each experiment of the baseline, by name: its params, metrics and executor's state."""
    [baseline] = [row for row in json.loads(output(repo, DVC, "exp", "show", "--json"))
                  if row["rev"] != "workspace"]  # fmt: skip
    return {
        branch["name"]: {**branch["revs"][0]["data"], "state": branch["executor"]["state"]}
        for branch in baseline["experiments"] or []
    }


def test_a_queued_grid_runs_on_two_workers_each_with_its_own_params_and_metrics(
    reproduced_project,
):
    repo = reproduced_project
    grid = ",".join(str(rate) for rate in RATES)
    run(repo, DVC, "exp", "run", "--queue", "-S", f"train.learning_rate={grid}")
    assert "Started '2' new experiments task queue workers" in output(
        repo, DVC, "queue", "start", "-j", "2"
    )
    try:
        deadline = time.monotonic() + WAIT
        while {"Queued", "Running"} & set(output(repo, DVC, "queue", "status").split()):
            assert time.monotonic() < deadline, output(repo, DVC, "queue", "status")
            time.sleep(POLL)
    finally:
        run(repo, DVC, "queue", "stop", "--kill")  # no worker outlives the test

    experiments = queued_experiments(repo)
    assert len(experiments) == len(RATES)
    assert all(experiment["state"] == "success" for experiment in experiments.values())
    by_rate = {
        experiment["params"]["params.yaml"]["data"]["train"]["learning_rate"]: experiment
        for experiment in experiments.values()
    }
    assert sorted(by_rate) == RATES
    # Its own metrics: the same as training with its params here, without the run cache.
    set_params(repo, train={"learning_rate": RATES[-1]})
    assert stages_run(output(repo, DVC, "repro", "--no-run-cache")) == ["train", "evaluate"]
    metrics = json.loads((repo / "reports/metrics.json").read_text())
    assert by_rate[RATES[-1]]["metrics"]["reports/metrics.json"]["data"] == metrics
    losses = {experiment["metrics"]["reports/metrics.json"]["data"]["test"]["loss"]
              for experiment in experiments.values()}  # fmt: skip
    assert len(losses) == len(RATES)
