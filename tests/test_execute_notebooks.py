"""tests/execute_notebooks.py (``make execute``): streams merged, unchanged notebooks untouched."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import nbformat

from conftest import ROOT


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "execute_notebooks", ROOT / "tests" / "execute_notebooks.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("execute_notebooks", module)
    spec.loader.exec_module(module)
    return module


EXECUTE = _load()


def test_consecutive_streams_of_one_name_are_merged() -> None:
    outs = [
        {"output_type": "stream", "name": "stdout", "text": "a\n"},
        {"output_type": "stream", "name": "stdout", "text": ["b\n", "c\n"]},
        {"output_type": "stream", "name": "stderr", "text": "warn\n"},
        {"output_type": "execute_result", "data": {"text/plain": "1"}},
        {"output_type": "stream", "name": "stdout", "text": "d\n"},
    ]
    merged = EXECUTE.merge_streams(outs)
    assert [o.get("text") for o in merged] == ["a\nb\nc\n", "warn\n", None, "d\n"]


def test_executing_an_unchanged_notebook_leaves_it_byte_identical(tmp_path: Path) -> None:
    # The flush and the pause make the kernel send the two prints as two stream messages.
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(
            "import sys, time\nprint('one'); sys.stdout.flush(); time.sleep(0.3)\nprint('two')"
        ),
        nbformat.v4.new_code_cell("1 + 1"),
    ]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    path = tmp_path / "tiny.ipynb"
    nbformat.write(nb, path)
    _, changed = EXECUTE.execute(path)
    assert changed
    first = path.read_bytes()
    cell = nbformat.read(path, as_version=4).cells[0]
    assert [o["text"] for o in cell.outputs] == ["one\ntwo\n"]
    _, changed = EXECUTE.execute(path)
    assert not changed
    assert path.read_bytes() == first
