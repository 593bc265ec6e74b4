"""Packaging facts a reader relies on: one lock file for make, CI and Binder; a lean runtime."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

from conftest import ROOT


def _pins(lines: list[str]) -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        m = re.fullmatch(r"([A-Za-z0-9_.\-\[\]]+)==([^\s;]+)", line)
        assert m, f"not an exact pin: {line!r}"
        name = re.sub(r"[-_.]+", "-", m[1].lower())
        pins[name] = m[2].split("+", 1)[0]  # a local label (+cpu) names the same release
    return pins


def lock() -> dict[str, str]:
    return _pins((ROOT / "constraints.txt").read_text().splitlines())


def test_lock_pins_the_toolchain() -> None:
    pins = lock()
    assert "torch" in pins, "torch is pinned exactly, so pip takes the CPU wheel on disk"
    assert pins["jupyter-book"].startswith("1."), "Jupyter Book 2 cannot build offline"
    for name in ("numpy", "scipy", "gymnasium", "sympy", "matplotlib", "nbval", "sphinx-proof"):
        assert name in pins, f"{name} is not pinned"
    assert "rlnotes" not in pins


def test_environment_yml_installs_the_notebook_extra_under_the_lock() -> None:
    """Binder gets the chapters' imports at the locked versions, and no dev toolchain."""
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert env["channels"] == ["conda-forge"]
    assert "python=3.11" in env["dependencies"]
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert "-c constraints.txt" in pip_section, "versions come from the lock"
    assert "-e .[notebooks]" in pip_section, "rlnotes installs from the repository"
    assert not [x for x in pip_section if "==" in x], "no hand copy of the lock's pins"
    assert any("download.pytorch.org/whl/cpu" in str(x) for x in pip_section), "torch must be CPU"
    assert "cuda" not in (ROOT / "environment.yml").read_text().lower()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    notebooks = project["optional-dependencies"]["notebooks"]
    pins = lock()
    for requirement in notebooks:
        name = re.sub(r"[-_.]+", "-", re.split(r"[<>=!\[ ;]", requirement, maxsplit=1)[0].lower())
        assert name in pins, f"{name} (notebooks extra) is not in the lock"


def test_lock_satisfies_the_declared_ranges() -> None:
    """Every runtime floor of pyproject admits the locked version (and the floors are tested)."""
    from packaging.requirements import Requirement

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = lock()
    for text in project["dependencies"]:
        req = Requirement(text)
        assert req.specifier.contains(pins[req.name.lower()]), (text, pins[req.name.lower()])


def test_runtime_dependencies_are_lean() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = {re.split(r"[<>=!\[ ]", d, maxsplit=1)[0].lower() for d in project["dependencies"]}
    assert names == {"numpy", "scipy", "torch", "gymnasium"}
    assert {"notebooks", "book", "pdf", "test", "bench"} <= set(project["optional-dependencies"])
    assert (ROOT / "rlnotes" / "py.typed").exists()


def _extra(name: str) -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return {
        re.split(r"[<>=!\[ ]", d, maxsplit=1)[0].lower()
        for d in project["optional-dependencies"][name]
    }


def test_notebooks_extra_is_what_the_chapters_may_import() -> None:
    """The setup cell installs rlnotes[notebooks]: it must hold every package a chapter may
    import beyond rlnotes's own dependencies (the contract test checks the imports)."""
    from conftest import load_contract

    allowed = set(load_contract().ALLOWED_IMPORTS)
    runtime = {"numpy", "scipy", "torch", "gymnasium", "rlnotes"}
    provided_by = {"IPython": "ipykernel", "myst_nb": "myst-nb"}
    needed = {provided_by.get(m, m.lower()) for m in allowed - runtime}
    assert _extra("notebooks") == needed


def test_readers_do_not_install_the_test_toolchain() -> None:
    tools = {"pytest", "pytest-xdist", "hypothesis", "nbval", "ruff", "mypy", "stable-baselines3"}
    assert not (_extra("book") | _extra("notebooks")) & tools
    makefile = (ROOT / "Makefile").read_text()
    assert '-e ".[book]"' in makefile and '-e ".[test,bench]"' in makefile
    assert re.search(r"^book: \$\(BOOK_STAMP\)$", makefile, re.M), "make book installs .[book]"


def test_every_dependency_of_every_extra_is_locked() -> None:
    pins = lock()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for extra, deps in project["optional-dependencies"].items():
        for dep in deps:
            name = re.sub(r"[-_.]+", "-", re.split(r"[<>=!\[ ;]", dep, maxsplit=1)[0].lower())
            if name != "rlnotes":
                assert name in pins, f"{dep} (extra {extra}) is not pinned in constraints.txt"


def test_licence_urls_and_changelog() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == {"text": "MIT"}
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")
    assert (ROOT / "CHANGELOG.md").read_text().startswith("# Changelog")
    url = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]
    assert project["urls"]["Source"] == url, "pyproject's Source URL differs from _config.yml"
    assert all(u.startswith(url) for u in project["urls"].values())


def test_ci_runs_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "make book" in readme and "make test" in readme
    run = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^make test$", run, re.M)
    assert "apt-get install" in run and "chromium" in run


def test_every_public_name_exists() -> None:
    import rlnotes

    assert len(set(rlnotes.__all__)) == len(rlnotes.__all__)
    missing = [n for n in rlnotes.__all__ if not hasattr(rlnotes, n)]
    assert not missing
    undocumented = [n for n in rlnotes.__all__ if not (getattr(rlnotes, n).__doc__ or "").strip()]
    assert not undocumented, f"public symbols without a docstring: {undocumented}"
    assert Path(rlnotes.__file__).parent == ROOT / "rlnotes"


def test_nothing_points_outside_the_repository() -> None:
    """The repository stands alone: no file refers to the workspace folders around it."""
    skip = {".venv", "_build", ".git", ".mypy_cache", ".ruff_cache", ".hypothesis", "node_modules"}
    offenders = []
    for path in ROOT.rglob("*"):
        rel = path.relative_to(ROOT)
        if skip & set(rel.parts) or not path.is_file() or "egg-info" in str(rel):
            continue
        if path.suffix not in {".py", ".md", ".ipynb", ".yml", ".yaml", ".toml", ".txt", ".cfg"}:
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        if re.search(r"\.\./" + "shared\\b|/work/" + "shared\\b", text):
            offenders.append(str(rel))
    assert not offenders, f"files that point outside the repository: {offenders}"
