"""Re-execute notebooks in place, top to bottom, each in a fresh kernel (``make execute``).

Usage: ``python tests/execute_notebooks.py book/01-score-function.ipynb [...]``.
The working directory of each kernel is the notebook's folder, as under nbval.

Consecutive stream outputs of a cell (two ``print`` calls that the kernel happened to send as two
messages) are merged into one, as Jupyter displays them, so that executing an unchanged notebook
leaves its file byte-identical; a notebook whose content did not change is not rewritten at all.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import nbformat
from nbclient import NotebookClient


def merge_streams(outputs: list[Any]) -> list[Any]:
    """Merge each run of consecutive stream outputs of the same name (stdout, stderr)."""
    merged: list[Any] = []
    for out in outputs:
        prev = merged[-1] if merged else None
        if (
            prev is not None
            and out.get("output_type") == "stream"
            and prev.get("output_type") == "stream"
            and prev.get("name") == out.get("name")
        ):
            prev["text"] = _text(prev) + _text(out)
            continue
        if out.get("output_type") == "stream":
            out["text"] = _text(out)
        merged.append(out)
    return merged


def _text(out: Any) -> str:
    text = out.get("text", "")
    return "".join(text) if isinstance(text, list) else str(text)


def execute(path: Path) -> tuple[float, bool]:
    """Execute one notebook in place; return its run time in seconds and whether it changed."""
    before = path.read_text(encoding="utf-8")
    nb = nbformat.reads(before, as_version=4)
    client = NotebookClient(
        nb,
        timeout=600,
        kernel_name="python3",
        record_timing=False,
        resources={"metadata": {"path": str(path.parent)}},
    )
    start = time.perf_counter()
    client.execute()
    elapsed = time.perf_counter() - start
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = merge_streams(cell.outputs)
    after = nbformat.writes(nb) + "\n"
    if after != before:
        path.write_text(after, encoding="utf-8")
    return elapsed, after != before


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: execute_notebooks.py NOTEBOOK.ipynb [...]", file=sys.stderr)
        return 2
    for name in argv:
        elapsed, changed = execute(Path(name))
        print(f"{name}: executed in {elapsed:.1f} s ({'updated' if changed else 'unchanged'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
