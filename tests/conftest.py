"""Shared fixtures: the repository root and the book's notebook parser (book/_ext)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import settings

# Property tests draw the same examples on every run and machine (reproducible numbers), and
# never write an example database into the tree.
settings.register_profile("rlnotes", derandomize=True, database=None, deadline=None)
settings.load_profile("rlnotes")

ROOT = Path(__file__).resolve().parents[1]
EXT = ROOT / "book" / "_ext"


def _load(name: str) -> ModuleType:
    if name in sys.modules:
        return sys.modules[name]
    if str(EXT) not in sys.path:
        sys.path.insert(0, str(EXT))
    spec = importlib.util.spec_from_file_location(name, EXT / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def load_contract() -> ModuleType:
    """Import book/_ext/contract.py, the contract parser the book build itself uses."""
    return _load("contract")


def load_rlbook() -> ModuleType:
    """Import book/_ext/rlbook.py, the book's Sphinx extension (its renderers are pure)."""
    load_contract()
    return _load("rlbook")


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def rlbook() -> ModuleType:
    return load_rlbook()


@pytest.fixture(scope="session")
def contract() -> ModuleType:
    return load_contract()
