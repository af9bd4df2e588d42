"""`python -m mnist_pipeline.figures`: a PNG per plot of dvc.yaml, and DVC's plots page drawing
every plot in headless Chromium with the network cut. Each test gets its own copy of the project
reproduced on tiny data (tests/support/project.py).
"""

import io
import json
import re
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from tests.support.project import DVC, run

pytestmark = pytest.mark.e2e

# Pixels of a colour (not white, grey or black) a drawn plot has at least, in its marks or its
# legend (on tiny data a curve is one epoch's point). Axes, titles and an empty frame have none.
MIN_COLOURED = 50
DRAW_WAIT_S = 30  # at most, for the page's plots to appear


def figures(repo: Path, *args: str, check: bool = True):
    return run(repo, sys.executable, "-m", "mnist_pipeline.figures", *args, check=check)


def coloured_pixels(png: bytes) -> int:
    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.int16)
    return int(((pixels.max(axis=-1) - pixels.min(axis=-1)) > 60).sum())


def plot_types(repo: Path) -> list[str]:
    """The type ('vega' or 'image') of each plot DVC finds in dvc.yaml."""
    shown = json.loads(run(repo, DVC, "plots", "show", "--json", "-o", "json-plots").stdout)
    return [render["type"] for renders in shown["data"].values() for render in renders]


def test_png_draws_each_plot_once_and_the_same_bytes_every_time(reproduced_project):
    repo = reproduced_project
    figures(repo, "png", "first")
    figures(repo, "png", "second")
    plots = yaml.safe_load((repo / "dvc.yaml").read_text())["plots"]
    drawn = sorted((repo / "first").iterdir())
    assert len(drawn) == len(plots)
    images = {repo / plot for plot in plots if isinstance(plot, str) and plot.endswith(".png")}
    for path in drawn:
        png = path.read_bytes()
        assert png == (repo / "second" / path.name).read_bytes(), path.name
        assert Image.open(io.BytesIO(png)).format == "PNG"
        copied = [image for image in images if image.read_bytes() == png]
        assert copied or coloured_pixels(png) > MIN_COLOURED, f"{path.name} is blank"
    assert all(image.read_bytes() in {path.read_bytes() for path in drawn} for image in images)


@pytest.mark.parametrize("what", ["png", "page"])
def test_a_missing_result_stops_with_one_line_naming_it_and_writes_nothing(
    reproduced_project, what
):
    repo = reproduced_project
    (repo / "reports/train/train.csv").unlink()
    result = figures(repo, what, "out", check=False)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "figures: error: cannot draw the plots: reports/train/train.csv: "
        "[Errno 2] No such file or directory: 'reports/train/train.csv'"
    ]
    assert not (repo / "out").exists()


def test_two_plots_drawn_under_one_file_name_stop_the_command(reproduced_project):
    repo = reproduced_project
    dvc_yaml = yaml.safe_load((repo / "dvc.yaml").read_text())
    dvc_yaml["plots"].append(
        {"loss per epoch": {"x": "epoch", "y": {"reports/train/train.csv": "loss"}}}
    )
    (repo / "dvc.yaml").write_text(yaml.safe_dump(dvc_yaml, sort_keys=False))
    result = figures(repo, "png", "out", check=False)
    assert result.returncode == 1
    assert "two plots would both be drawn as out/loss-per-epoch.png" in result.stderr
    assert "Traceback" not in result.stderr


def test_page_loads_only_files_beside_it(reproduced_project):
    repo = reproduced_project
    figures(repo, "page", "page")
    html = (repo / "page/index.html").read_text()
    sources = re.findall(r'src\s*=\s*"([^"]*)"', html)
    assert "vega.js" in sources
    for source in sources:
        assert (repo / "page" / source).is_file(), source


def test_page_draws_every_plot_in_chromium_with_the_network_cut(
    reproduced_project, browser, tmp_path
):
    repo = reproduced_project
    figures(repo, "page", "page")
    types = plot_types(repo)
    context = browser.new_context(offline=True)
    refused = []

    def only_files(route):
        if route.request.url.startswith("file:"):
            route.continue_()
        else:
            refused.append(route.request.url)
            route.abort()

    context.route("**/*", only_files)
    page = context.new_page()
    page_errors = []
    page.on("pageerror", lambda error: page_errors.append(str(error)))
    page.goto((repo / "page/index.html").as_uri())

    # Vega draws after the page has loaded: look again until every plot shows colour, or give up.
    plots = page.locator(".vega-embed .marks")
    deadline = time.monotonic() + DRAW_WAIT_S
    while True:
        coloured = [coloured_pixels(plot.screenshot()) for plot in plots.all()]
        drawn = len(coloured) == types.count("vega") and min(coloured) > MIN_COLOURED
        if drawn or time.monotonic() > deadline:
            break
        page.wait_for_timeout(200)
    page.screenshot(path=tmp_path / "plots.png", full_page=True)

    assert len(coloured) == types.count("vega")
    assert min(coloured) > MIN_COLOURED, f"a plot is blank: coloured pixels {coloured}"
    loaded = page.locator("img").evaluate_all(
        "images => images.map(image => image.complete && image.naturalWidth > 0)"
    )
    assert loaded == [True] * types.count("image")
    assert refused == []
    assert page_errors == []
    context.close()
