"""The package layout: imports run downward only, and ``import rlnotes`` stays light."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import rlnotes
from conftest import ROOT

PACKAGE = ROOT / "rlnotes"

#: Each layer and the layers it may import from (besides itself). The package docstring
#: states the same rule in words.
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "dp": {"core"},
    "estimators": {"core"},
    "pg": {"core", "estimators"},
    "td": {"core", "dp"},
    "nn": {"core", "dp", "estimators", "pg", "td"},
}


def _layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "rlnotes" else None


def _imports(path: Path) -> list[str]:
    found: list[str] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
        elif isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
    return found


def layer_violations(root: Path) -> list[str]:
    """Every import in ``root``'s subpackages that reaches up or sideways out of its layer."""
    problems: list[str] = []
    for path in sorted(root.glob("*/*.py")):
        layer = path.parent.name
        for module in _imports(path):
            target = _layer(module)
            if module == "rlnotes":
                problems.append(f"{path.relative_to(root)} imports the top-level rlnotes")
            elif target is not None and target != layer and target not in ALLOWED[layer]:
                problems.append(f"{path.relative_to(root)} ({layer}) imports {module}")
    return problems


def test_every_subpackage_is_a_known_layer() -> None:
    found = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}
    assert found == set(ALLOWED)


def test_imports_run_downward_only() -> None:
    problems = layer_violations(PACKAGE)
    assert not problems, "\n".join(problems)


def test_layer_rule_catches_an_upward_import(tmp_path: Path) -> None:
    (tmp_path / "core").mkdir()
    (tmp_path / "core" / "bad.py").write_text("from rlnotes.dp.bellman import lookahead\n")
    (tmp_path / "dp").mkdir()
    (tmp_path / "dp" / "ok.py").write_text("from rlnotes.core.mdp import TabularMDP\n")
    assert layer_violations(tmp_path) == ["core/bad.py (core) imports rlnotes.dp.bellman"]


def test_torch_is_imported_only_in_nn() -> None:
    for path in sorted(PACKAGE.glob("*/*.py")):
        if path.parent.name == "nn":
            continue
        heavy = [m for m in _imports(path) if m.split(".")[0] in {"torch", "gymnasium"}]
        assert not heavy, f"{path.relative_to(PACKAGE)} imports {heavy} at module level"


@pytest.mark.parametrize("name", rlnotes.__all__)
def test_every_public_name_resolves(name: str) -> None:
    value = getattr(rlnotes, name)
    assert getattr(value, "__name__", name) == name
    assert value.__module__.startswith("rlnotes."), value.__module__


def test_import_rlnotes_loads_neither_torch_nor_gymnasium() -> None:
    code = (
        "import sys, rlnotes\n"
        "rlnotes.TabularMDP; rlnotes.gae; rlnotes.policy_iteration; rlnotes.reinforce_gradients\n"
        "print(sorted(m for m in ('torch', 'gymnasium') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_unknown_attribute_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = rlnotes.nope


def test_type_checking_block_names_every_export() -> None:
    """The static imports (for mypy and IDEs) and the lazy table list the same names."""
    tree = ast.parse((PACKAGE / "__init__.py").read_text())
    static: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING":
            for imp in node.body:
                assert isinstance(imp, ast.ImportFrom) and imp.module
                for alias in imp.names:
                    static[alias.asname or alias.name] = imp.module
    assert static == rlnotes._EXPORTS


def test_no_error_test_matches_a_bare_letter() -> None:
    """A one-letter pattern such as d also matches "ndim": argument names are anchored."""
    import re

    bare = re.compile(r"""match=r?["'][A-Za-z]["']""")
    offenders = [
        f"{path.relative_to(ROOT)}:{i}"
        for path in sorted((ROOT / "tests").rglob("test_*.py"))
        for i, line in enumerate(path.read_text().splitlines(), 1)
        if bare.search(line)
    ]
    assert not offenders, offenders
