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
    assert pins["torch"] == "2.13.0"
    assert pins["jupyter-book"].startswith("1.")
    for name in ("numpy", "scipy", "gymnasium", "sympy", "matplotlib", "nbval", "sphinx-proof"):
        assert name in pins, f"{name} is not pinned"
    assert "rlnotes" not in pins


def test_environment_yml_uses_the_same_pins() -> None:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert env["channels"] == ["conda-forge"]
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert _pins(pip_section) == lock()
    assert any("download.pytorch.org/whl/cpu" in str(x) for x in pip_section), "torch must be CPU"
    assert "-e ." in pip_section, "rlnotes installs from the repository"
    assert "cuda" not in (ROOT / "environment.yml").read_text().lower()


def test_runtime_dependencies_are_lean() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = {re.split(r"[<>=!\[ ]", d, maxsplit=1)[0].lower() for d in project["dependencies"]}
    assert names == {"numpy", "scipy", "torch", "gymnasium"}
    assert {"book", "test"} <= set(project["optional-dependencies"])
    assert (ROOT / "rlnotes" / "py.typed").exists()


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


#: Public types that hold results rlnotes computes; they are outputs, not validated inputs.
RESULT_TYPES = {"PlanningResult", "QLearningResult", "BairdCounterexample"}


def test_every_public_entry_point_rejects_junk_with_a_named_value_error() -> None:
    """Call each public function or class with a string for every required argument: each must
    raise ValueError whose message starts with the name of one of its arguments."""
    import inspect

    import pytest

    import rlnotes

    checked = 0
    for name in rlnotes.__all__:
        obj = getattr(rlnotes, name)
        if name in RESULT_TYPES or not callable(obj):
            continue
        params = inspect.signature(obj).parameters.values()
        required = [p.name for p in params if p.default is inspect.Parameter.empty
                    and p.kind is not inspect.Parameter.VAR_POSITIONAL
                    and p.kind is not inspect.Parameter.VAR_KEYWORD]
        if not required:
            continue
        with pytest.raises(ValueError) as err:
            obj(**{p: "junk" for p in required})
        first_word = str(err.value).split(" ", 1)[0]
        assert any(first_word.startswith(p) for p in required), f"{name}: {err.value}"
        checked += 1
    assert checked >= 30
