"""The chapter contract, enforced on every notebook of the book (see ../shared/DESIGN.md).

- Every code cell was executed, in order, in one fresh kernel (execution counts 1..n), and no
  committed output holds an error (nbval silently skips unexecuted cells, so it is tested here).
- Every labelled claim (eq-, thm-, lem-, cor-) has at least one check cell naming it; every check
  cell asserts; every label a check names exists; labels are unique.
- Every chapter installs rlnotes in its first cell when it is missing (for Colab), from the
  repository URL of _config.yml.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from conftest import ROOT, load_rlbook

RLBOOK = load_rlbook()
NOTEBOOKS = RLBOOK.chapter_notebooks(ROOT)
CHAPTERS = [p for p in NOTEBOOKS if re.match(r"\d\d-", p.name)]
IDS = [p.relative_to(ROOT).as_posix() for p in NOTEBOOKS]


def contract_problems(notebooks: list[Any]) -> list[str]:
    """Every breach of the claim/check contract across the given parsed notebooks."""
    problems: list[str] = []
    defined: dict[str, str] = {}
    for nb in notebooks:
        for claim in nb.claims:
            if claim.label in defined:
                first = defined[claim.label]
                problems.append(f"{claim.label}: defined twice ({first}, {nb.docname})")
            defined[claim.label] = nb.docname
    named = {label for nb in notebooks for c in nb.checks for label in c.labels}
    for nb in notebooks:
        for claim in nb.claims:
            if claim.kind in RLBOOK.CLAIM_PREFIXES and claim.label not in named:
                problems.append(f"{nb.docname}: claim {claim.label} has no check cell")
            if claim.kind == "cor" and not claim.title.startswith("Correction"):
                problems.append(f"{nb.docname}: {claim.label} is not titled 'Correction: ...'")
            if claim.kind not in RLBOOK.CLAIM_PREFIXES + RLBOOK.NAME_PREFIXES:
                problems.append(f"{nb.docname}: label {claim.label} has an unknown prefix")
        for check in nb.checks:
            where = f"{nb.docname} cell {check.cell_index}"
            if not check.asserts:
                problems.append(f"{where}: check cell has no assert")
            if check.kind not in RLBOOK.CHECK_KINDS:
                problems.append(f"{where}: unknown check kind {check.kind!r}")
            if not check.labels:
                problems.append(f"{where}: check names no label")
            for label in check.labels:
                if label not in defined:
                    problems.append(f"{where}: check names unknown label {label}")
    return problems


def test_book_has_chapters() -> None:
    assert CHAPTERS, "no chapter notebooks found under book/"


def test_contract_holds_across_the_book() -> None:
    problems = contract_problems(RLBOOK.parse_book(ROOT))
    assert not problems, "\n".join(problems)


def _fake_notebook(cells: list[dict[str, Any]], tmp_path: Path) -> Any:
    path = tmp_path / "book" / "99-fake.ipynb"
    path.parent.mkdir(parents=True, exist_ok=True)
    nb = {"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    path.write_text(json.dumps(nb))
    return RLBOOK.parse_notebook(path, tmp_path)


def _md(text: str) -> dict[str, Any]:
    return {"cell_type": "markdown", "metadata": {}, "source": text}


def _code(text: str, n: int | None = 1) -> dict[str, Any]:
    return {"cell_type": "code", "metadata": {}, "source": text, "execution_count": n,
            "outputs": []}


def test_contract_detects_breaches(tmp_path: Path) -> None:
    """Negative control: the contract check must flag each kind of breach."""
    nb = _fake_notebook(
        [
            _md("# Fake\n$$ x = 1 $$ (eq-fake-unchecked)\n\n$$ y = 2 $$ (eq-fake-checked)"),
            _md("```{prf:theorem} T\n:label: thm-fake\n\nBody.\n```"),
            _md("```{admonition} Correction: wrong\n:class: warning\n:name: cor-fake\n\nT.\n```"),
            _code("# check[numeric]: eq-fake-checked, eq-missing\nprint(1)"),
            _code("# check[visual]: thm-fake\nassert True"),
            _code("# check[symbolic]: cor-fake\nassert 1 == 1"),
        ],
        tmp_path,
    )
    labels = {c.label for c in nb.claims}
    assert labels == {"eq-fake-unchecked", "eq-fake-checked", "thm-fake", "cor-fake"}
    problems = "\n".join(contract_problems([nb]))
    assert "eq-fake-unchecked has no check cell" in problems
    assert "check cell has no assert" in problems
    assert "unknown label eq-missing" in problems
    assert "unknown check kind 'visual'" in problems
    assert "cor-fake" not in problems


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


@pytest.mark.parametrize("path", CHAPTERS, ids=[p.name for p in CHAPTERS])
def test_first_cell_installs_rlnotes_for_colab(path: Path) -> None:
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    url = config["repository"]["url"]
    nb = json.loads(path.read_text(encoding="utf-8"))
    first = next(c for c in nb["cells"] if c["cell_type"] == "code")
    src = "".join(first["source"])
    assert 'importlib.util.find_spec("rlnotes") is None' in src
    assert f'%pip install --quiet "rlnotes @ git+{url}.git"' in src


@pytest.mark.parametrize("path", CHAPTERS, ids=[p.name for p in CHAPTERS])
def test_chapter_pairs_symbolic_and_numeric_checks(path: Path, rlbook: ModuleType) -> None:
    nb = rlbook.parse_notebook(path, ROOT)
    kinds = {c.kind for c in nb.checks}
    assert {"symbolic", "numeric"} <= kinds, f"{path.name} has check kinds {kinds}"
    src = path.read_text(encoding="utf-8")
    assert "import sympy" in src and "rlnotes" in src


def test_rlnotes_docstrings_name_labels_that_exist() -> None:
    """A docstring's "Book: eq-..." must point at a claim the book really makes."""
    import inspect

    import rlnotes

    defined = {claim.label for nb in RLBOOK.parse_book(ROOT) for claim in nb.claims}
    named: dict[str, set[str]] = {}
    for name in rlnotes.__all__:
        doc = inspect.getdoc(getattr(rlnotes, name)) or ""
        for label in re.findall(r"\b(?:eq|thm|lem|cor|def)-[a-z0-9]+(?:-[a-z0-9]+)*", doc):
            named.setdefault(label, set()).add(name)
    assert named, "no docstring names a book label"
    missing = {label: sorted(names) for label, names in named.items() if label not in defined}
    assert not missing, f"docstrings name labels the book does not define: {missing}"
