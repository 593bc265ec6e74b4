"""Unit tests of book/_ext/contract.py, the parser behind the contract test and the ledger.

Each case below failed (or would have) under the old regular-expression parser: a comment that
mentions "assert" counted as asserting, a cell that only calls np.testing.assert_allclose did not,
and "$$ (x-y)^2 ..." produced the label "x-y".
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from conftest import load_contract, load_rlbook

C = load_contract()
URL = "https://github.com/example/rlnotes"


# --------------------------------------------------------------------------- helpers


def md(text: str) -> dict[str, Any]:
    return {"cell_type": "markdown", "metadata": {}, "source": text}


def code(
    text: str,
    n: int | None = 1,
    tags: list[str] | None = None,
    outputs: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    meta: dict[str, Any] = {"tags": tags} if tags else {}
    return {
        "cell_type": "code",
        "metadata": meta,
        "source": text,
        "execution_count": n,
        "outputs": outputs or [],
    }


def notebook(cells: list[dict[str, Any]], tmp_path: Path, name: str = "99-fake") -> Any:
    path = tmp_path / "book" / f"{name}.ipynb"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5})
    )
    return C.parse_notebook(path, tmp_path)


def exercises(n: int) -> list[dict[str, Any]]:
    cells = []
    for i in range(n):
        cells.append(
            md(
                f"```{{exercise}} E{i}\n:label: ex-fake-{i}\n\nDo it.\n```\n\n"
                f"```{{solution}} ex-fake-{i}\n:label: sol-fake-{i}\n:class: dropdown\n\n"
                "Done.\n```"
            )
        )
    return cells


# --------------------------------------------------------------------------- code cells


@pytest.mark.parametrize(
    ("source", "asserts"),
    [
        ("# check[numeric]: eq-a\n# TODO: assert later\nprint(1)", False),
        ("# check[numeric]: eq-a\nprint('assert x')", False),
        ("# check[numeric]: eq-a\nnp.testing.assert_allclose(x, y)", True),
        (
            "# check[numeric]: eq-a\nfrom numpy.testing import assert_allclose\n"
            "assert_allclose(x, y)",
            True,
        ),
        ("# check[numeric]: eq-a\ntorch.testing.assert_close(x, y)", True),
        ("# check[numeric]: eq-a\nassert err < 1e-9, err", True),
        ("# check[numeric]: eq-a\nassert True", False),
        ("# check[numeric]: eq-a\nassert 'always'", False),
        ("# check[numeric]: eq-a\nif err > tol:\n    raise AssertionError(err)", True),
        ("# check[numeric]: eq-a\nfor x in xs:\n    assert x > 0", True),
        ("# check[numeric]: eq-a\ndef f():\n    assert x\n", False),  # defined, never called
        ("# check[numeric]: eq-a\ndef f():\n    assert x\n\nf()", True),
        ("# check[numeric]: eq-a\nfn = lambda: None\nassert fn() is None", True),
        ("# check[numeric]: eq-a\n%pip install foo\nassert x == 1", True),
        ("# check[numeric]: eq-a\n!ls\nfiles = !ls\nassert files", True),
        ("%%time\nassert x == 1", False),  # a cell magic: the cell is not Python
        ("# check[numeric]: eq-a\nthis is not python", False),
    ],
)
def test_cell_asserts(source: str, asserts: bool) -> None:
    assert C.cell_asserts(source) is asserts


def test_an_assert_inside_a_called_helper_counts() -> None:
    helpers = C.asserting_functions(
        [
            "def check_close(a, b):\n    assert abs(a - b) < 1e-9\n",
            "def outer(a):\n    check_close(a, a)\n",  # asserts through another helper
            "def quiet(a):\n    return a\n",
        ]
    )
    assert helpers == frozenset({"check_close", "outer"})
    assert C.cell_asserts("# check[numeric]: eq-a\nouter(1.0)", helpers)
    assert not C.cell_asserts("# check[numeric]: eq-a\nquiet(1.0)", helpers)


def test_helpers_are_found_across_the_notebook(tmp_path: Path) -> None:
    nb = notebook(
        [
            md("$$ x = 1 $$ (eq-fake-a)"),
            code("def z_check(est, se, z):\n    assert abs(est) < z * se\n"),
            code("# check[numeric]: eq-fake-a\nz_check(0.1, 1.0, 3.9)", 2),
        ],
        tmp_path,
    )
    assert [c.asserts for c in nb.checks] == [True]


def test_strip_magics_keeps_line_numbers() -> None:
    src = "import x\n%matplotlib inline\n  !echo hi\nobj?\ny = 1"
    out = C.strip_magics(src)
    assert out.split("\n") == ["import x", "pass", "  pass", "pass", "y = 1"]


@pytest.mark.parametrize(
    ("line", "parsed"),
    [
        ("# check[symbolic]: eq-a", ("symbolic", ("eq-a",))),
        ("# check[numeric]: eq-a, thm-b ,lem-c", ("numeric", ("eq-a", "thm-b", "lem-c"))),
        ("#check[numeric]:eq-a", ("numeric", ("eq-a",))),
        ("\n\n# check[visual]: eq-a", ("visual", ("eq-a",))),
        ("# checks the result", None),
        ("x = 1  # check[numeric]: eq-a", None),
    ],
)
def test_check_header(line: str, parsed: tuple[str, tuple[str, ...]] | None) -> None:
    assert C.parse_check_header(line) == parsed


def test_imports_are_read_from_the_syntax_tree() -> None:
    src = (
        "import numpy as np\nfrom scipy import stats\nimport os.path\n%pip install x\n"
        "from . import y\n# import hypothesis\ns = 'import pytest'"
    )
    assert C.imported_modules(src) == {"numpy", "scipy", "os", "."}


# --------------------------------------------------------------------------- markdown cells


def test_equation_labels_are_found_where_myst_finds_them() -> None:
    text = (
        "$$ (x-y)^2 = x^2 - 2xy + y^2 $$\n\n"  # no label: "(x-y)" opens the formula
        "$$ a = b $$ (eq-fake-one)\n\n"
        "$$\n\\begin{aligned} a &= b \\\\ c &= d \\end{aligned}\n$$ (eq-fake-two)\n\n"
        "Inline $a$ and `$$ x $$ (eq-in-code)` in code.\n"
    )
    labels, _, _ = C.markdown_items(text)
    assert labels == ["eq-fake-one", "eq-fake-two"]


def test_directives_nested_and_with_options() -> None:
    text = (
        "# The title\n\n"
        "````{solution} ex-fake-a\n:label: sol-fake-a\n:class: dropdown\n\n"
        "It holds:\n\n$$ y = 2 $$ (eq-fake-inside)\n\n"
        "```{prf:proof}\nBody.\n```\n````\n\n"
        ":::{admonition} Pitfall: it is tempting\n:class: caution\n:name: pit-fake-x\n\n"
        "Text.\n:::\n"
    )
    labels, directives, title = C.markdown_items(text)
    assert title == "The title"
    assert labels == ["eq-fake-inside"]
    names = [(d.name, d.arg, dict(d.options)) for d in directives]
    assert ("solution", "ex-fake-a", {"label": "sol-fake-a", "class": "dropdown"}) in names
    assert ("prf:proof", "", {}) in names
    assert (
        "admonition",
        "Pitfall: it is tempting",
        {"class": "caution", "name": "pit-fake-x"},
    ) in names


def test_yaml_options_block() -> None:
    _, directives, _ = C.markdown_items(
        "```{prf:theorem} T\n---\nlabel: thm-fake-y\n---\nBody.\n```"
    )
    assert directives[0].options == {"label": "thm-fake-y"}


# --------------------------------------------------------------------------- the rules


def test_book_problems_flag_each_breach(tmp_path: Path) -> None:
    """Negative control: each kind of breach of the claim/check contract is reported."""
    nb = notebook(
        [
            md("# Fake\n$$ x = 1 $$ (eq-fake-unchecked)\n\n$$ y = 2 $$ (eq-fake-checked)"),
            md("```{prf:theorem} T\n:label: thm-fake\n\nBody.\n```"),
            md("```{admonition} Correction: wrong\n:class: warning\n:name: cor-fake\n\nT.\n```"),
            md("```{admonition} A pitfall\n:class: warning\n:name: pit-fake\n\nT.\n```"),
            md("$$ z $$ (prop-fake)"),
            code("# check[numeric]: eq-fake-checked, eq-missing\nprint(1)"),
            code("# check[visual]: thm-fake\nassert x"),
            code("# check[symbolic]: cor-fake, pit-fake, prop-fake\nassert 1 == y"),
        ],
        tmp_path,
    )
    labels = {c.label for c in nb.claims}
    assert labels == {
        "eq-fake-unchecked",
        "eq-fake-checked",
        "thm-fake",
        "cor-fake",
        "pit-fake",
        "prop-fake",
    }
    problems = "\n".join(C.book_problems([nb]))
    assert "claim eq-fake-unchecked has no check cell" in problems
    assert "asserts nothing that could fail" in problems
    assert "unknown label 'eq-missing'" in problems
    assert "unknown check kind 'visual'" in problems
    assert "pit-fake is not titled 'Pitfall: ...'" in problems
    assert "pit-fake needs ':class: caution'" in problems
    assert "'prop-fake' has an unknown prefix" in problems
    assert "cor-fake" not in problems


def test_labels_defined_twice(tmp_path: Path) -> None:
    a = notebook([md("$$ x $$ (eq-fake-dup)")], tmp_path, "98-a")
    b = notebook([md("$$ y $$ (eq-fake-dup)")], tmp_path, "99-b")
    assert any("defined twice" in p for p in C.book_problems([a, b]))


def _good_chapter() -> list[dict[str, Any]]:
    figure = {
        "output_type": "display_data",
        "data": {
            "application/papermill.record/image/png": "iVBOR",
            "application/papermill.record/text/plain": "<Figure>",
        },
        "metadata": {
            "scrapbook": {"name": "fig-fake-curve", "mime_prefix": "application/papermill.record/"}
        },
    }
    return [
        md("# Fake chapter\n\n$$ x = 1 $$ (eq-fake-x)"),
        code(C.setup_cell(URL), 1),
        code("import numpy as np\nimport sympy as sp\nimport rlnotes", 2),
        code("# check[symbolic]: eq-fake-x\nassert sp.simplify(x - 1) == 0", 3, ["hide-input"]),
        code(
            "# check[numeric]: eq-fake-x\nassert abs(x - 1) < 1e-12",
            4,
            ["hide-input"],
            [{"output_type": "stream", "name": "stdout", "text": "err < 1e-12\n"}],
        ),
        code(
            "from myst_nb import glue\nglue('fig-fake-curve', fig, display=False)",
            5,
            ["hide-input"],
            [figure],
        ),
        md(
            "```{glue:figure} fig-fake-curve\n:name: fig-fake-curve\n\nWhat it shows.\n```\n\n"
            "See {numref}`fig-fake-curve` and {eq}`eq-fake-x`."
        ),
        *exercises(3),
    ]


def test_a_chapter_that_follows_the_rules_has_no_problem(tmp_path: Path) -> None:
    nb = notebook(_good_chapter(), tmp_path)
    assert C.chapter_problems(nb, URL) == []
    assert C.book_problems([nb]) == []


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda cells: cells.__setitem__(1, code("import importlib.util\n", 1)),
            "not the setup cell",
        ),
        (lambda cells: cells[3]["metadata"].clear(), "lacks the tag hide-input"),
        (lambda cells: cells.append(code("x = 1\n# NBVAL_IGNORE_OUTPUT", 9)), "NBVAL_ comment"),
        (lambda cells: cells.append(code("print(inspect.getsource(f))", 9)), "inspect.getsource"),
        (lambda cells: cells.append(md("as in ({eq}`eq-fake-x`)")), "double parentheses"),
        (lambda cells: cells.append(code("x = '" + "a" * 90 + "'", 9)), "> 88 characters"),
        (lambda cells: cells.append(code("plt.plot(x)\nplt.show()", 9)), "plt.show()"),
        (lambda cells: cells.append(code("import hypothesis", 9)), "imports 'hypothesis'"),
        (
            lambda cells: cells.append(code("from benchmarks import timing", 9)),
            "imports 'benchmarks'",
        ),
        (
            lambda cells: cells.append(
                code(
                    "x",
                    9,
                    outputs=[
                        {
                            "output_type": "display_data",
                            "data": {"image/png": "iVBOR"},
                            "metadata": {},
                        }
                    ],
                )
            ),
            "a bare image output",
        ),
        (
            lambda cells: cells.append(
                code(
                    "print(s)",
                    9,
                    outputs=[{"output_type": "stream", "name": "stdout", "text": "x" * 100}],
                )
            ),
            "output line 1 has 100 > 88",
        ),
        (
            lambda cells: cells.__setitem__(6, md("No figure directive.")),
            "has no {glue:figure} directive",
        ),
        (
            lambda cells: cells.__setitem__(6, md("```{glue:figure} fig-fake-curve\n\n```")),
            "has no :name:",
        ),
        (
            lambda cells: cells.__setitem__(
                6, md("```{glue:figure} fig-fake-curve\n:name: fig-fake-curve\n```")
            ),
            "has no caption",
        ),
        (lambda cells: cells.pop(), "2 {exercise} directives, at least 3"),
        (
            lambda cells: cells.__setitem__(
                -1, md("```{exercise} E\n:label: ex-fake-2\n\nX.\n```")
            ),
            "has no {solution} ex-fake-2",
        ),
        (
            lambda cells: cells.__setitem__(
                -1,
                md(
                    "```{exercise} E\n:label: ex-fake-2\n\nX.\n```\n\n"
                    "```{solution} ex-fake-2\n:label: sol-fake-2\n\nY.\n```"
                ),
            ),
            "needs ':class: dropdown'",
        ),
        (lambda cells: cells.pop(3), "no check[symbolic] cell"),
    ],
)
def test_each_breach_of_the_reader_rules_is_named(edit: Any, message: str, tmp_path: Path) -> None:
    cells = _good_chapter()
    edit(cells)
    problems = C.chapter_problems(notebook(cells, tmp_path), URL)
    assert any(message in p for p in problems), problems


def test_setup_cell_follows_the_repository_url() -> None:
    cell = C.setup_cell("https://github.com/someone/else.git")
    assert 'url = "git+https://github.com/someone/else.git"' in cell
    assert C.setup_cell("https://github.com/someone/else/") == cell


# --------------------------------------------------------------------------- rendering


def test_ledger_links_each_check_cell(tmp_path: Path) -> None:
    nb = notebook(
        [md("$$ x $$ (eq-fake-l)"), code("# check[numeric]: eq-fake-l\nassert x", 7)], tmp_path
    )
    ledger = load_rlbook().ledger_markdown([nb])
    assert "{ref}`In [7] <check-book-99-fake-1>`" in ledger
    assert nb.checks[0].anchor == "check-book-99-fake-1"


def test_errata_lists_corrections_and_pitfalls_apart(tmp_path: Path) -> None:
    nb = notebook(
        [
            md(
                "```{admonition} Correction: the sign\n:class: warning\n:name: cor-fake-s\n\n"
                "$$ a $$ (eq-fake-in-cor)\n```"
            ),
            md("```{admonition} Pitfall: the max\n:class: caution\n:name: pit-fake-m\n\nM.\n```"),
        ],
        tmp_path,
    )
    rlbook = load_rlbook()
    cor, pit = rlbook.errata_markdown([nb], "cor"), rlbook.errata_markdown([nb], "pit")
    assert "**The sign**" in cor and "pit-fake-m" not in cor
    assert "(eq-fake-in-cor)" not in cor  # shown again, so its label is not defined twice
    assert "**The max**" in pit and "see the pitfall <pit-fake-m>" in pit


def test_book_labels_in_docstrings_become_links() -> None:
    roles = load_rlbook().book_label_roles
    defined = frozenset({"eq-vr-gae", "thm-bell-span", "cor-sf-x"})
    text = (
        "Notes\n-----\nBook: eq-vr-gae (the sum), thm-bell-span and\neq-unknown-one. "
        "Source: eq-vr-gae."
    )
    out = roles(text, defined)
    assert "Book: :eq:`eq-vr-gae` (the sum), :prf:ref:`thm-bell-span` and\neq-unknown-one." in out
    assert out.endswith("Source: eq-vr-gae.")  # only the span after "Book:" is linked


def test_ledger_escapes_a_bar_in_a_title(tmp_path: Path) -> None:
    nb = notebook(
        [
            md(
                "```{admonition} Correction: no factor pi(a | s)\n:class: warning\n"
                ":name: cor-fake-bar\n\nT.\n```"
            ),
            code("# check[numeric]: cor-fake-bar\nassert x", 1),
        ],
        tmp_path,
    )
    row = load_rlbook().ledger_markdown([nb]).splitlines()[-1]
    assert "{ref}`No factor pi(a \\| s) <cor-fake-bar>`" in row
    assert row.count(" | ") == 4  # five cells
