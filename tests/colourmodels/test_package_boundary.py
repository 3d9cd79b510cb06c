"""colourmodels is the science, usable without the site: no Django anywhere in it."""

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "colourmodels"


def _imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_no_module_under_colourmodels_imports_django():
    offenders = {
        str(path.relative_to(PACKAGE.parent)): sorted(
            m for m in _imported_modules(path) if m.split(".")[0] in {"django", "celery"}
        )
        for path in PACKAGE.rglob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_whole_package_imports_without_django():
    code = (
        "import sys, importlib, pkgutil, colourmodels;"
        "[importlib.import_module(m.name) for m in "
        " pkgutil.walk_packages(colourmodels.__path__, 'colourmodels.')];"
        "assert not [m for m in sys.modules if m.split('.')[0] in ('django', 'celery')]"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
