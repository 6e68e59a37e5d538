"""The package layout users and CI rely on: import names resolve here, layering points one way."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ["dataprep", "benchmark", "baselines"]
# What each package may import from this project (dataprep <- benchmark <- baselines).
ALLOWED = {"dataprep": {"dataprep"}, "benchmark": {"dataprep", "benchmark"},
           "baselines": {"dataprep", "benchmark", "baselines"}}


def imported_top_level_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
        elif (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)
              and isinstance(node.args[0].value, str) and _is_dynamic_import(node.func)):
            # importlib.import_module("torch") and __import__("torch") are imports too
            names.add(node.args[0].value.split(".")[0])
    return names


def _is_dynamic_import(func: ast.expr) -> bool:
    return ((isinstance(func, ast.Attribute) and func.attr == "import_module")
            or (isinstance(func, ast.Name) and func.id in ("import_module", "__import__")))


@pytest.mark.parametrize("package", PACKAGES)
def test_import_names_resolve_to_this_repository(package):
    # dataprep, benchmark and baselines are also names of unrelated PyPI packages.
    module = __import__(package)
    assert Path(module.__file__).resolve().parent == ROOT / package


@pytest.mark.parametrize("package", PACKAGES)
def test_layering_points_one_way(package):
    offenders = []
    for path in sorted((ROOT / package).rglob("*.py")):
        imported = imported_top_level_names(path) & set(PACKAGES)
        bad = imported - ALLOWED[package]
        if bad:
            offenders.append(f"{path.relative_to(ROOT)} imports {sorted(bad)}")
    assert not offenders, "layering violated:\n" + "\n".join(offenders)


def test_dataprep_never_imports_torch():
    offenders = [str(p.relative_to(ROOT)) for p in sorted((ROOT / "dataprep").rglob("*.py"))
                 if "torch" in imported_top_level_names(p)]
    assert not offenders, f"dataprep must not import torch: {offenders}"
    # and nothing it imports at run time pulls torch in either
    code = ("import sys, importlib, pkgutil, dataprep\n"
            "for m in pkgutil.walk_packages(dataprep.__path__, 'dataprep.'):\n"
            "    if not m.name.endswith('__main__'): importlib.import_module(m.name)\n"
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "False"


def test_console_entry_points_run():
    for module in ["dataprep", "benchmark"]:
        out = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True, cwd=ROOT)
        assert out.returncode == 0, out.stderr
        assert "usage:" in out.stdout


def _project_imports(path: Path, modules: set[str]) -> set[str]:
    """Project modules that ``path`` imports anywhere in it (function-level imports included)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name in modules)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            candidates = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            found.update(c for c in candidates if c in modules)
    return found


def test_no_import_cycles():
    """Interface modules never import their implementations (registries are filled by plug-in packages
    named in entry points), so the module graph has no cycle, not even through function-level imports."""
    paths = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            paths[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph = {name: _project_imports(path, set(paths)) - {name} for name, path in paths.items()}
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done

    def visit(name: str, trail: list[str]) -> list[str] | None:
        state[name] = 1
        for child in sorted(graph[name]):
            if state.get(child) == 1:
                return trail + [name, child]
            if child not in state and (cycle := visit(child, trail + [name])):
                return cycle
        state[name] = 2
        return None

    for name in sorted(graph):
        if name not in state and (cycle := visit(name, [])):
            pytest.fail("import cycle: " + " -> ".join(cycle[cycle.index(cycle[-1]):]))
