"""The chapter contract of book/AUTHORING.md, enforced on every notebook of the book.

The rules live in ``book/_ext/contract.py`` (the parser the book build uses too, unit-tested in
tests/test_contract_parser.py); this file applies them and reports each breach with its place:
``book/NN-slug cell K`` is the K-th cell of the notebook counting from 0 (markdown cells
included), followed by the cell's first line.

- Every code cell was executed, in order, in one fresh kernel (execution counts 1..n), and no
  committed output holds an error or a memory address (nbval skips unexecuted cells silently).
- Across the book: every claim (eq-, thm-, lem-, cor-, pit-) has a check cell naming it, every
  check cell asserts something that can fail, names only existing labels, and labels are unique.
- In every chapter: the setup cell first (verbatim, with the URL of _config.yml), check cells
  collapsed (tag hide-input), no NBVAL_ comments or inspect.getsource, every figure glued and
  captioned, no "({eq}`", code and output lines within 88 characters, only the imports a reader's
  install has, at least 3 exercises with dropdown solutions, symbolic and numeric checks.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from conftest import ROOT, load_contract

CONTRACT = load_contract()
NOTEBOOKS = CONTRACT.chapter_notebooks(ROOT)
CHAPTERS = [p for p in NOTEBOOKS if CONTRACT.is_chapter(p)]
IDS = [p.relative_to(ROOT).as_posix() for p in NOTEBOOKS]


def repository_url() -> str:
    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    return str(config["repository"]["url"])


def test_book_has_chapters() -> None:
    assert CHAPTERS, "no chapter notebooks found under book/"


def test_claims_and_checks_across_the_book() -> None:
    problems = CONTRACT.book_problems(CONTRACT.parse_book(ROOT))
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("path", CHAPTERS, ids=[p.name for p in CHAPTERS])
def test_chapter_follows_the_reader_rules(path: Path) -> None:
    nb = CONTRACT.parse_notebook(path, ROOT)
    problems = CONTRACT.chapter_problems(nb, repository_url())
    assert not problems, f"{len(problems)} breaches of book/AUTHORING.md:\n" + "\n".join(problems)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_executed_top_to_bottom(path: Path) -> None:
    nb = json.loads(path.read_text(encoding="utf-8"))
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    counts = [c.get("execution_count") for c in code]
    expected = list(range(1, len(code) + 1))
    assert counts == expected, f"execution counts {counts}: run `make execute`"
    for i, cell in enumerate(code):
        for out in cell.get("outputs", []):
            assert out.get("output_type") != "error", f"code cell {i} has an error output"
            text = json.dumps(out.get("data", out.get("text", "")))
            assert not re.search(r" at 0x[0-9a-fA-F]{6,}", text), f"code cell {i} shows an address"


def test_the_setup_cell_installs_from_the_configured_repository() -> None:
    """The setup cell names the URL of _config.yml, installs the notebooks extra, and stops."""
    cell = CONTRACT.setup_cell(repository_url())
    assert f'url = "git+{repository_url()}.git"' in cell
    assert "rlnotes[notebooks] @ {url}" in cell
    assert "raise SystemExit" in cell
    compile(cell, "<setup>", "exec")


def test_rlnotes_docstrings_name_labels_that_exist(contract: ModuleType) -> None:
    """A docstring's "Book: eq-..." must point at a claim the book really makes."""
    import inspect

    import rlnotes

    defined = {claim.label for nb in contract.parse_book(ROOT) for claim in nb.claims}
    named: dict[str, set[str]] = {}
    for name in rlnotes.__all__:
        doc = inspect.getdoc(getattr(rlnotes, name)) or ""
        for label in re.findall(r"\b(?:eq|thm|lem|cor|pit|def)-[a-z0-9]+(?:-[a-z0-9]+)*", doc):
            named.setdefault(label, set()).add(name)
    assert named, "no docstring names a book label"
    missing = {label: sorted(names) for label, names in named.items() if label not in defined}
    assert not missing, f"docstrings name labels the book does not define: {missing}"
