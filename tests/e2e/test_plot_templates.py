"""The custom plot templates of .dvc/plots, as dvc.yaml uses them: results written by hand into a
copy of the project, the plot specs from `dvc plots show --json`, drawn by Vega (vl-convert) into
a scenegraph whose marks the tests read.
"""

import json
from collections import Counter
from pathlib import Path

import pytest
import vl_convert
import yaml
from PIL import ImageColor

from mnist_pipeline.figures import VEGA_LITE_VERSION
from tests.support.project import DVC, run

pytestmark = pytest.mark.e2e


def plot_ids(repo: Path, **props: str) -> list[str]:
    """The ids of the plots of dvc.yaml that have all of `props` (e.g. x="epoch")."""
    plots = yaml.safe_load((repo / "dvc.yaml").read_text())["plots"]
    found = [
        plot_id
        for plot in plots
        if isinstance(plot, dict)
        for plot_id, plot_props in plot.items()
        if props.items() <= plot_props.items()
    ]
    assert found, f"no plot in dvc.yaml has {props}"
    return found


def scenegraph(repo: Path, plot_id: str) -> dict:
    shown = json.loads(run(repo, DVC, "plots", "show", "--json", "-o", "shown", plot_id).stdout)
    (render,) = shown["data"][plot_id]
    drawn = vl_convert.vegalite_to_scenegraph(
        render["content"], vl_version=VEGA_LITE_VERSION, allowed_base_urls=[]
    )
    return drawn["scenegraph"]


def mark_groups(node: dict | list, role: str, orient: str | None = None):
    """Every mark group with this role (under an axis of this orientation, if given)."""
    if isinstance(node, list):
        for child in node:
            yield from mark_groups(child, role, orient)
    elif isinstance(node, dict):
        if node.get("role") == role:
            yield node
        if orient is None or node.get("orient") in (None, orient):
            for child in node.get("items", []):
                yield from mark_groups(child, role, orient)


def test_epoch_axes_show_whole_epochs(reproduced_project):
    repo = reproduced_project
    rows = [f"{epoch},{0.9 + epoch / 100},{1 / epoch}" for epoch in range(1, 4)]
    (repo / "reports/train/train.csv").write_text("\n".join(["epoch,accuracy,loss", *rows]))
    for plot_id in plot_ids(repo, x="epoch"):
        labels = [
            item["text"]
            for axis in mark_groups(scenegraph(repo, plot_id), "axis-label", orient="bottom")
            for item in axis["items"]
        ]
        assert labels == ["1", "2", "3"], plot_id


def test_mistakes_matrix_colours_and_counts_only_the_mistakes(reproduced_project):
    repo = reproduced_project
    pairs = Counter({("3", "3"): 40, ("9", "9"): 30, ("4", "4"): 8, ("4", "9"): 7, ("7", "1"): 2,
                     ("1", "1"): 5, ("7", "7"): 5})  # fmt: skip
    rows = [f"{actual},{predicted}" for (actual, predicted), n in pairs.items() for _ in range(n)]
    (repo / "reports/evaluate/predictions.csv").write_text("\n".join(["actual,predicted", *rows]))
    (plot_id,) = plot_ids(repo, template="mistakes")
    graph = scenegraph(repo, plot_id)

    texts = [
        item for group in mark_groups(graph, "mark") for item in group["items"] if "text" in item
    ]
    assert sorted(item["text"] for item in texts) == ["2", "7"]  # the mistakes, not the correct
    cells = [
        item
        for group in mark_groups(graph, "mark")
        if group["marktype"] == "rect"
        for item in group["items"]
    ]
    digits = {digit for pair in pairs for digit in pair}
    assert len(cells) == len(digits) ** 2

    def colour_under(text: dict) -> tuple[int, int, int]:
        (cell,) = [cell for cell in cells if cell["x"] < text["x"] < cell["x"] + cell["width"]
                   and cell["y"] < text["y"] < cell["y"] + cell["height"]]  # fmt: skip
        return ImageColor.getrgb(cell["fill"])

    def is_colour(rgb: tuple[int, int, int]) -> bool:
        return max(rgb) - min(rgb) > 30  # not white, grey or black

    coloured = [cell for cell in cells if is_colour(ImageColor.getrgb(cell["fill"]))]
    assert len(coloured) == 2  # the two kinds of mistake; correct and empty cells are grey/white
    seven, two = sorted(texts, key=lambda text: text["text"], reverse=True)
    assert is_colour(colour_under(seven)) and is_colour(colour_under(two))
    assert sum(colour_under(seven)) < sum(colour_under(two))  # more mistakes, darker


def test_per_digit_ticks_show_differences_of_a_percent(reproduced_project):
    repo = reproduced_project
    scores = {"0": (0.99, 0.98, 0.985), "1": (0.95, 0.99, 0.97), "2": (0.97, 0.96, 0.965)}
    rows = [f"{digit},{p},{r},{f1},100" for digit, (p, r, f1) in scores.items()]
    table = "\n".join(["digit,precision,recall,f1,support", *rows])
    (repo / "reports/evaluate/per_class.csv").write_text(table)
    test_set = {"reports/evaluate/per_class.csv": ["precision", "recall", "f1"]}
    (plot_id,) = plot_ids(repo, template="per_digit", y=test_set)  # not the field set's
    graph = scenegraph(repo, plot_id)
    ticks = [item for group in mark_groups(graph, "mark") for item in group["items"]]
    assert len(ticks) == 3 * 3  # one per digit and measure
    assert len({tick["fill"] for tick in ticks}) == 3  # a colour per measure
    score_labels = [
        float(item["text"])
        for axis in mark_groups(graph, "axis-label", orient="left")
        for item in axis["items"]
    ]
    # From 0, values 0.95 to 0.99 would all sit in the top twentieth of the plot.
    assert 0.9 < min(score_labels) <= 0.95
