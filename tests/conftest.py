"""Shared fixtures: the repository root and the book's notebook parser."""

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


def load_rlbook() -> ModuleType:
    """Import book/_ext/rlbook.py, the parser the book build itself uses."""
    spec = importlib.util.spec_from_file_location("rlbook", ROOT / "book" / "_ext" / "rlbook.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("rlbook", module)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def rlbook() -> ModuleType:
    return load_rlbook()
