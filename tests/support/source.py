"""The project's own source read as code: which library modules a file imports."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def imported_modules(source: Path) -> set[str]:
    """Library files imported by `source`, directly or through each other (lazy imports too)."""
    found: set[str] = set()
    pending = [source]
    while pending:
        tree = ast.parse(pending.pop().read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            for name in names:
                file = Path(*name.split(".")).with_suffix(".py")
                is_library = name.startswith("mnist_pipeline.") and (ROOT / file).is_file()
                if is_library and str(file) not in found:
                    found.add(str(file))
                    pending.append(ROOT / file)
    return found
