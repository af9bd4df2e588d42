"""The layout the code promises: who imports what, and only Keras' and TensorFlow's public API."""

import ast
import tomllib
from pathlib import Path

import pytest

from tests.support.source import ROOT

PYTHON_FILES = sorted(
    path
    for folder in ("mnist_pipeline", "stages", "benchmarks", "tests")
    for path in (ROOT / folder).rglob("*.py")
)
IMPORT_RULES = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]


def test_every_module_of_the_library_is_in_a_layer_of_the_import_rules():
    """lint-imports checks who imports whom (`make test`); a module outside every layer would
    escape it."""
    (layers,) = [c["layers"] for c in IMPORT_RULES["contracts"] if c["type"] == "layers"]
    named = {name.strip() for layer in layers for name in layer.split("|")}
    modules = {
        ".".join(path.relative_to(ROOT).with_suffix("").parts)
        for path in (ROOT / "mnist_pipeline").rglob("*.py")
        if path.name != "__init__.py"  # a package's docstring
    }
    outside = {
        module
        for module in modules
        if not any(module.startswith(f"{n}.") or module == n for n in named)
    }
    assert outside == set()
    assert set(IMPORT_RULES["root_packages"]) == {"mnist_pipeline", "stages"}


def test_tests_do_not_import_benchmarks():
    for path in (ROOT / "tests").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom | ast.Import):
                names = [node.module] if isinstance(node, ast.ImportFrom) else []
                names += [alias.name for alias in node.names]
                assert not any(str(name).startswith("benchmarks") for name in names), path


def private_names(path: Path) -> list[str]:
    """Private Keras or TensorFlow names used in `path`: imports of keras.src or
    tensorflow.python, and `x._name` attributes other than on `self` of our own non-Keras
    classes (and Python's os._exit, atexit._run_exitfuncs)."""
    found = []
    tree = ast.parse(path.read_text())
    keras_classes = {
        node.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ClassDef) and any("keras" in ast.unparse(b) for b in node.bases)
    }
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom | ast.Import):
            names = [node.module] if isinstance(node, ast.ImportFrom) else []
            names += [alias.name for alias in node.names]
            found += [n for n in names if n and n.startswith(("keras.src", "tensorflow.python"))]
        if isinstance(node, ast.ClassDef) and node.name in keras_classes:
            found += [
                f"{node.name}: self.{sub.attr}"
                for sub in ast.walk(node)
                if isinstance(sub, ast.Attribute) and is_private(sub.attr)
            ]
        elif isinstance(node, ast.Attribute) and is_private(node.attr):
            owner = ast.unparse(node.value)
            if owner != "self" and f"{owner}.{node.attr}" not in PYTHONS_OWN:
                found.append(f"{owner}.{node.attr}")
    return found


PYTHONS_OWN = {"os._exit", "atexit._run_exitfuncs"}


def is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


@pytest.mark.parametrize("path", PYTHON_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_only_public_keras_and_tensorflow_names_are_used(path):
    assert private_names(path) == []


def test_the_private_name_check_finds_what_it_looks_for(tmp_path):
    code = tmp_path / "sample.py"
    code.write_text(
        "from keras.src import ops\n"
        "import tensorflow.python.framework\n"
        "class Opt(keras.optimizers.Optimizer):\n"
        "    def f(self):\n"
        "        return self._velocities\n"
        "def g(optimizer):\n"
        "    return optimizer._get_variable_index\n"
    )
    assert private_names(code) == [
        "keras.src",
        "tensorflow.python.framework",
        "Opt: self._velocities",
        "optimizer._get_variable_index",
    ]
