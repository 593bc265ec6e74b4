"""Apply the mechanical reader rules to chapter notebooks (run only by whoever owns the chapter).

Usage: ``python book/_ext/tag_checks.py book/NN-slug.ipynb [...]``.

- every check cell (first line ``# check[...]: ...``) gets the cell tag ``hide-input``;
- a ``# NBVAL_IGNORE_OUTPUT`` comment line becomes the cell tag ``nbval-ignore-output``.

Sources and outputs are otherwise untouched, so nbval's comparison is unaffected; the file is
rewritten only if something changed. Everything else in book/AUTHORING.md is the author's job.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parent))

from contract import parse_check_header  # noqa: E402


def tag(path: Path) -> list[str]:
    """Tag the notebook at ``path`` in place; return what changed."""
    nb = nbformat.read(path, as_version=4)
    changes: list[str] = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        tags = list(cell.metadata.get("tags", []))
        lines = cell.source.split("\n")
        kept = [ln for ln in lines if ln.strip() != "# NBVAL_IGNORE_OUTPUT"]
        if len(kept) != len(lines):
            cell.source = "\n".join(kept)
            if "nbval-ignore-output" not in tags:
                tags.append("nbval-ignore-output")
            changes.append(f"cell {index}: NBVAL_IGNORE_OUTPUT comment -> tag")
        if parse_check_header(cell.source) is not None and "hide-input" not in tags:
            tags.append("hide-input")
            changes.append(f"cell {index}: tag hide-input")
        if tags:
            cell.metadata["tags"] = tags
    if changes:
        nbformat.write(nb, path)
    return changes


def main(argv: list[str]) -> int:
    for name in argv:
        changes = tag(Path(name))
        print(f"{name}: {len(changes)} changes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
