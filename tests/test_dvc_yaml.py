"""dvc.yaml declares exactly what each stage's code imports, reads and writes."""

import ast
from pathlib import Path

import pytest
import yaml

from mnist_pipeline.params import SECTIONS
from mnist_pipeline.plumbing import paths
from mnist_pipeline.reading import registry
from tests.support.source import imported_modules

ROOT = Path(__file__).resolve().parent.parent
STAGES = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


def sections_loaded(source: Path) -> set[str]:
    classes = {cls.__name__: name for name, cls in SECTIONS.items()}
    calls = [node for node in ast.walk(ast.parse(source.read_text())) if isinstance(node, ast.Call)]
    return {
        classes[call.args[0].id]
        for call in calls
        if getattr(call.func, "id", None) == "load_section"
    }


@pytest.mark.parametrize("stage", ["fetch", "preprocess", "train", "evaluate"])
def test_code_deps_are_the_script_and_exactly_the_modules_it_imports(stage):
    script = f"stages/{stage}.py"
    assert STAGES[stage]["cmd"] == f"python -m stages.{stage}"
    code_deps = {dep for dep in STAGES[stage]["deps"] if dep.endswith(".py")}
    assert code_deps == {script} | imported_modules(ROOT / script)


@pytest.mark.parametrize("stage", ["fetch", "preprocess", "train", "evaluate"])
def test_params_are_exactly_the_sections_the_stage_loads(stage):
    sections = {param.split(".")[0] for param in STAGES[stage].get("params", [])}
    assert sections == sections_loaded(ROOT / f"stages/{stage}.py")


def test_preprocess_depends_on_the_one_train_key_it_reads():
    # Any other train key (epochs, say) must not rerun it, nor evaluate after it.
    assert STAGES["preprocess"]["params"] == ["train.drawings"]


def out_paths(stage: str) -> set[str]:
    return {next(iter(out)) if isinstance(out, dict) else out for out in STAGES[stage]["outs"]}


def test_outs_and_data_deps_are_the_paths_the_code_uses():
    assert out_paths("fetch") == {str(paths.RAW_DIR)}
    assert out_paths("preprocess") == {
        str(paths.PREPARED_DIR),
        str(paths.COLLECTED_TRAIN_DIR),
        str(paths.FIELD_DIR),
    }
    assert out_paths("train") == {
        str(paths.MODEL_FILE),
        str(paths.SERVING_MODEL_FILE),
        str(paths.TRAIN_HISTORY_FILE),
        str(paths.VALIDATION_HISTORY_FILE),
    }
    assert out_paths("evaluate") == {
        str(paths.METRICS_FILE),
        str(paths.PREDICTIONS_FILE),
        str(paths.PER_CLASS_FILE),
        str(paths.MISREAD_IMAGE),
        str(paths.FIELD_PREDICTIONS_FILE),
        str(paths.FIELD_PER_CLASS_FILE),
        str(paths.FIELD_MISREAD_IMAGE),
    }
    data_deps = {
        stage: {dep for dep in spec["deps"] if not dep.endswith(".py")}
        for stage, spec in STAGES.items()
    }
    assert data_deps == {
        "fetch": set(),
        "preprocess": {str(paths.RAW_DIR), str(paths.DRAWINGS_DIR)},
        "train": {str(paths.PREPARED_DIR), str(paths.COLLECTED_TRAIN_DIR)},
        "evaluate": {str(paths.PREPARED_DIR), str(paths.FIELD_DIR), str(paths.SERVING_MODEL_FILE)},
    }


def test_reports_are_in_git_and_declared_as_metrics_and_plots():
    dvc_yaml = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    for stage in ("train", "evaluate"):
        for out in STAGES[stage]["outs"]:
            if isinstance(out, dict):
                assert next(iter(out.values())) == {"cache": False}
    assert dvc_yaml["metrics"] == [str(paths.METRICS_FILE)]
    plotted = str(dvc_yaml["plots"])
    for path in (
        paths.TRAIN_HISTORY_FILE,
        paths.VALIDATION_HISTORY_FILE,
        paths.PREDICTIONS_FILE,
        paths.PER_CLASS_FILE,
        paths.MISREAD_IMAGE,
        paths.FIELD_PREDICTIONS_FILE,
        paths.FIELD_PER_CLASS_FILE,
        paths.FIELD_MISREAD_IMAGE,
    ):
        assert str(path) in plotted


def test_the_registered_model_is_the_served_file_the_train_stage_writes():
    artifacts = yaml.safe_load((ROOT / "dvc.yaml").read_text())["artifacts"]
    assert list(artifacts) == [registry.MODEL_NAME]  # what the web server and TF Serving call it
    assert artifacts["mnist-mlp"]["type"] == "model"
    assert artifacts["mnist-mlp"]["path"] == str(paths.SERVING_MODEL_FILE)
    assert str(paths.SERVING_MODEL_FILE) in out_paths("train")
