"""The chapter contract of the book, as a pure parser of notebooks (no Sphinx, no side effects).

The book build (``rlbook.py``: ledger, errata, anchors) and the contract test
(``tests/test_notebooks.py``) both read the notebooks through this module, so the generated
appendices and the test can never disagree. ``book/AUTHORING.md`` states the rules in prose.

- Markdown cells are tokenised with markdown-it and the same plugins MyST uses (dollar math with
  labels, colon fences, amsmath), so an equation label is found exactly where MyST finds one; the
  bodies of directives are parsed again, so claims inside admonitions and solutions count too.
- Code cells are parsed with :mod:`ast` after IPython magics (``%pip``, ``!ls``) are blanked out,
  so comments and strings never count as assertions.
"""

from __future__ import annotations

import ast
import json
import re
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.token import Token
from mdit_py_plugins.amsmath import amsmath_plugin
from mdit_py_plugins.colon_fence import colon_fence_plugin
from mdit_py_plugins.deflist import deflist_plugin
from mdit_py_plugins.dollarmath import dollarmath_plugin
from mdit_py_plugins.myst_blocks import myst_block_plugin
from mdit_py_plugins.myst_role import myst_role_plugin

__all__ = [
    "ALLOWED_IMPORTS",
    "CHECK_KINDS",
    "CLAIM_PREFIXES",
    "LINE_LENGTH",
    "MIN_EXERCISES",
    "NAME_PREFIXES",
    "Check",
    "Claim",
    "Directive",
    "Notebook",
    "asserting_functions",
    "book_problems",
    "cell_asserts",
    "chapter_notebooks",
    "chapter_problems",
    "imported_modules",
    "is_chapter",
    "markdown_items",
    "parse_book",
    "parse_check_header",
    "parse_notebook",
    "setup_cell",
    "strip_magics",
]

#: Label prefixes that claim something and therefore need a check cell naming them:
#: equations, theorems, lemmas, corrections of the notes and pitfalls.
CLAIM_PREFIXES = ("eq", "thm", "lem", "cor", "pit")
#: Label prefixes that only name something (definitions, exercises, solutions, figures).
NAME_PREFIXES = ("def", "ex", "sol", "fig")
#: The kinds a check cell may declare in its first line.
CHECK_KINDS = ("symbolic", "numeric")
#: The longest code line (and printed output line) a chapter may have: ruff's notebook width.
LINE_LENGTH = 88
#: The fewest exercises a chapter ends with.
MIN_EXERCISES = 3
#: Top-level modules a chapter may import besides the standard library.
ALLOWED_IMPORTS = frozenset(
    {"numpy", "scipy", "sympy", "matplotlib", "torch", "gymnasium", "IPython", "myst_nb", "rlnotes"}
)

_SETUP = """\
# Setup: where rlnotes is missing (Colab, a bare Binder), install it; elsewhere do nothing.
import importlib.util
import subprocess
import sys

if importlib.util.find_spec("rlnotes") is None:
    url = "git+{url}.git"
    pip = [sys.executable, "-m", "pip", "install", "--quiet"]
    if subprocess.run([*pip, f"rlnotes[notebooks] @ {{url}}"]).returncode != 0:
        raise SystemExit(f"Could not install rlnotes from {{url}}; see pip's message above.")"""

_CHECK_HEADER = re.compile(r"#\s*check\[(?P<kind>[^\]]*)\]:(?P<labels>.*)")
_LABEL = re.compile(r"[a-z]+-[a-z0-9]+(?:-[a-z0-9]+)*")
_OPTION = re.compile(r"^:(?P<key>[A-Za-z0-9_-]+):[ \t]*(?P<value>.*)$")
_IMAGE = re.compile(r"^image/")
_GLUE_PREFIX = "application/papermill.record/"
_CHAPTER = re.compile(r"^\d\d-")


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class Directive:
    """A MyST directive of a markdown cell: ``{name} arg``, its options and its body."""

    name: str
    arg: str
    options: Mapping[str, str]
    body: str
    cell_index: int


@dataclass(frozen=True)
class Claim:
    """A labelled item of a notebook: a claim (eq, thm, lem, cor, pit) or a name (def, ex, ...)."""

    label: str
    kind: str
    docname: str
    cell_index: int
    title: str = ""
    body: str = ""
    classes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Check:
    """A check cell: where it is, its declared kind, the labels it names, whether it asserts."""

    docname: str
    cell_index: int
    execution_count: int | None
    kind: str
    labels: tuple[str, ...]
    asserts: bool
    tags: tuple[str, ...] = ()

    @property
    def anchor(self) -> str:
        """The HTML id (and Sphinx label) that the book gives this check cell."""
        return f"check-{self.docname.replace('/', '-')}-{self.cell_index}".lower()


@dataclass(frozen=True)
class Notebook:
    """What the contract cares about in one notebook of the book."""

    path: Path
    docname: str
    title: str
    cells: tuple[Mapping[str, Any], ...]
    claims: tuple[Claim, ...] = ()
    checks: tuple[Check, ...] = ()
    directives: tuple[Directive, ...] = field(default=())


# --------------------------------------------------------------------------- code cells


def source_of(cell: Mapping[str, Any]) -> str:
    """The source of a notebook cell as one string."""
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


def strip_magics(source: str) -> str:
    """Blank out IPython syntax so that :func:`ast.parse` accepts the cell.

    Line magics (``%pip ...``), shell escapes (``!ls``, ``x = !ls``) and help (``obj?``) become
    ``pass`` at the same indentation; a cell magic (``%%time``) blanks the whole cell. Line numbers
    are kept.
    """
    lines = source.split("\n")
    first = next((ln.strip() for ln in lines if ln.strip()), "")
    if first.startswith("%%"):
        return "\n".join("" for _ in lines)
    out: list[str] = []
    for line in lines:
        stripped = line.lstrip()
        indent = line[: len(line) - len(stripped)]
        if stripped.startswith(("%", "!")) or re.match(r"^\w+\s*=\s*[!%]", stripped):
            out.append(f"{indent}pass")
        elif re.match(r"^[\w.]+\?{1,2}$", stripped):
            out.append(f"{indent}pass")
        else:
            out.append(line)
    return "\n".join(out)


def _parse(source: str) -> ast.Module | None:
    try:
        return ast.parse(strip_magics(source))
    except SyntaxError:
        return None


def parse_check_header(source: str) -> tuple[str, tuple[str, ...]] | None:
    """``(kind, labels)`` if the cell's first non-blank line is ``# check[kind]: a, b``."""
    first = next((ln.strip() for ln in source.split("\n") if ln.strip()), "")
    m = _CHECK_HEADER.fullmatch(first)
    if m is None:
        return None
    labels = tuple(x.strip() for x in m["labels"].split(",") if x.strip())
    return m["kind"].strip(), labels


def _executed_nodes(body: Sequence[ast.stmt]) -> Iterator[ast.AST]:
    """The nodes that run when ``body`` runs: function bodies and lambdas are skipped (they run
    only when called); class bodies run."""
    stack: list[ast.AST] = list(reversed(body))
    while stack:
        node = stack.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            # Decorators and defaults run at definition time.
            if not isinstance(node, ast.Lambda):
                stack.extend(node.decorator_list)
            stack.extend(d for d in node.args.defaults)
            stack.extend(d for d in node.args.kw_defaults if d is not None)
            continue
        yield node
        stack.extend(reversed(list(ast.iter_child_nodes(node))))


def _called_name(call: ast.Call) -> str:
    func = call.func
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return ""


def _is_real_assert(node: ast.AST) -> bool:
    """An ``assert`` whose condition can fail (``assert True`` or ``assert "x"`` cannot)."""
    return isinstance(node, ast.Assert) and not isinstance(node.test, ast.Constant)


def _asserts_directly(nodes: Iterable[ast.AST], helpers: frozenset[str]) -> bool:
    for node in nodes:
        if _is_real_assert(node):
            return True
        if isinstance(node, ast.Raise) and node.exc is not None:
            return True
        if isinstance(node, ast.Call):
            name = _called_name(node)
            # np.testing.assert_allclose, torch.testing.assert_close, a helper that asserts.
            if name.startswith("assert") or name in helpers:
                return True
    return False


def asserting_functions(sources: Iterable[str]) -> frozenset[str]:
    """Names of the functions defined in ``sources`` whose body asserts (an ``assert``, a
    ``raise``, an ``assert_*`` call), directly or by calling another such function."""
    bodies: dict[str, list[ast.AST]] = {}
    for source in sources:
        tree = _parse(source)
        if tree is None:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                bodies.setdefault(node.name, []).extend(
                    n for stmt in node.body for n in ast.walk(stmt)
                )
    found: frozenset[str] = frozenset()
    while True:
        grown = frozenset(n for n, nodes in bodies.items() if _asserts_directly(nodes, found))
        if grown == found:
            return found
        found = grown


def cell_asserts(source: str, helpers: frozenset[str] = frozenset()) -> bool:
    """Whether running the cell evaluates something that can fail: an ``assert`` with a
    non-constant condition, a ``raise``, a call of an ``assert_*`` function, or a call of one of
    ``helpers`` (functions that assert, see :func:`asserting_functions`). Comments, strings and
    functions the cell defines but never calls do not count."""
    tree = _parse(source)
    if tree is None:
        return False
    helpers = helpers | asserting_functions([source])
    return _asserts_directly(_executed_nodes(tree.body), helpers)


def imported_modules(source: str) -> set[str]:
    """The top-level names of the modules a cell imports (absolute imports only)."""
    tree = _parse(source)
    found: set[str] = set()
    if tree is None:
        return found
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module.split(".")[0])
        elif isinstance(node, ast.ImportFrom) and node.level:
            found.add("." * node.level + (node.module or ""))
    return found


def setup_cell(repository_url: str) -> str:
    """The verbatim first code cell of every chapter, for the repository at ``repository_url``
    (``repository.url`` of ``_config.yml``, without ``.git``)."""
    return _SETUP.format(url=repository_url.rstrip("/").removesuffix(".git"))


# --------------------------------------------------------------------------- markdown cells


def _markdown_parser() -> MarkdownIt:
    # The MyST configuration of _config.yml (dollarmath, colon_fence, amsmath, deflist) with
    # MyST's defaults for dollar math (labels, spaces and digits allowed).
    return (
        MarkdownIt("commonmark")
        .enable("table")
        .use(myst_block_plugin)
        .use(myst_role_plugin)
        .use(dollarmath_plugin, allow_labels=True, allow_space=True, allow_digits=True)
        .use(colon_fence_plugin)
        .use(amsmath_plugin)
        .use(deflist_plugin)
    )


_MD = _markdown_parser()


def _split_options(body: str) -> tuple[dict[str, str], str]:
    """MyST directive options: leading ``:key: value`` lines, or a leading ``---`` YAML block."""
    lines = body.split("\n")
    options: dict[str, str] = {}
    if lines and lines[0].strip() == "---":
        end = next((i for i in range(1, len(lines)) if lines[i].strip() == "---"), None)
        if end is not None:
            for line in lines[1:end]:
                key, _, value = line.partition(":")
                if key.strip():
                    options[key.strip()] = value.strip().strip("'\"")
            return options, "\n".join(lines[end + 1 :])
    i = 0
    while i < len(lines):
        m = _OPTION.match(lines[i].strip())
        if m is None:
            break
        options[m["key"]] = m["value"].strip()
        i += 1
    return options, "\n".join(lines[i:])


def _directive_tokens(tokens: Sequence[Token]) -> Iterator[Token]:
    for tok in tokens:
        if tok.type in ("fence", "colon_fence") and tok.info.strip().startswith("{"):
            yield tok


def markdown_items(text: str, cell_index: int = 0) -> tuple[list[str], list[Directive], str]:
    """Equation labels, directives (nested ones included) and the first ``#`` heading of a
    markdown text, found as MyST finds them."""
    tokens = _MD.parse(text)
    labels = [t.info.strip() for t in tokens if t.type in ("math_block_label",)]
    title = ""
    for i, tok in enumerate(tokens):
        if tok.type == "heading_open" and tok.tag == "h1" and i + 1 < len(tokens):
            title = tokens[i + 1].content.strip()
            break
    directives: list[Directive] = []
    for tok in _directive_tokens(tokens):
        m = re.match(r"\{(?P<name>[^}]+)\}\s*(?P<arg>.*)", tok.info.strip())
        if m is None:
            continue
        options, body = _split_options(tok.content)
        directives.append(Directive(m["name"], m["arg"].strip(), options, body, cell_index))
        if m["name"] not in ("code-block", "code", "eval-rst", "raw", "literalinclude"):
            inner_labels, inner, _ = markdown_items(body, cell_index)
            labels.extend(inner_labels)
            directives.extend(inner)
    return labels, directives, title


def _directive_claim(d: Directive, docname: str) -> Claim | None:
    label = d.options.get("label") or d.options.get("name")
    if not label:
        return None
    classes = tuple(d.options.get("class", "").split())
    return Claim(label, label.split("-")[0], docname, d.cell_index, d.arg, d.body, classes)


# --------------------------------------------------------------------------- notebooks


def parse_notebook(path: Path, root: Path) -> Notebook:
    """Collect the labelled items and the check cells of the notebook at ``path``."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    docname = path.relative_to(root).with_suffix("").as_posix()
    cells: tuple[Mapping[str, Any], ...] = tuple(nb.get("cells", []))
    title = ""
    claims: list[Claim] = []
    directives: list[Directive] = []
    code_sources: list[str] = []
    pending: list[tuple[int, Mapping[str, Any], tuple[str, tuple[str, ...]]]] = []
    for index, cell in enumerate(cells):
        text = source_of(cell)
        if cell.get("cell_type") == "markdown":
            labels, found, heading = markdown_items(text, index)
            title = title or heading
            claims.extend(Claim(label, label.split("-")[0], docname, index) for label in labels)
            for d in found:
                directives.append(d)
                claim = _directive_claim(d, docname)
                if claim is not None:
                    claims.append(claim)
        elif cell.get("cell_type") == "code":
            code_sources.append(text)
            header = parse_check_header(text)
            if header is not None:
                pending.append((index, cell, header))
    helpers = asserting_functions(code_sources)
    checks = tuple(
        Check(
            docname,
            index,
            cell.get("execution_count"),
            kind,
            labels,
            cell_asserts(source_of(cell), helpers),
            tuple(cell.get("metadata", {}).get("tags", [])),
        )
        for index, cell, (kind, labels) in pending
    )
    return Notebook(path, docname, title, cells, tuple(claims), checks, tuple(directives))


def is_chapter(path: Path) -> bool:
    """Chapters are the numbered notebooks ``book/NN-slug.ipynb``."""
    return path.suffix == ".ipynb" and _CHAPTER.match(path.name) is not None


def chapter_notebooks(root: Path) -> list[Path]:
    """The book's notebooks, in file order (build output and checkpoints excluded)."""
    return sorted(
        p
        for p in (root / "book").glob("**/*.ipynb")
        if "_build" not in p.parts and ".ipynb_checkpoints" not in p.parts
    )


def parse_book(root: Path) -> list[Notebook]:
    """Parse every notebook of the book."""
    return [parse_notebook(p, root) for p in chapter_notebooks(root)]


# --------------------------------------------------------------------------- the rules


def book_problems(notebooks: Sequence[Notebook]) -> list[str]:
    """Every breach of the claim/check contract across the book: unique labels with known
    prefixes, a check cell for every claim, checks that assert and name existing labels, and
    correctly titled corrections and pitfalls."""
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
            where = f"{nb.docname} cell {claim.cell_index}"
            if claim.kind not in CLAIM_PREFIXES + NAME_PREFIXES:
                problems.append(
                    f"{where}: label {claim.label!r} has an unknown prefix (claims: "
                    f"{', '.join(CLAIM_PREFIXES)}; names: {', '.join(NAME_PREFIXES)})"
                )
            elif claim.kind in CLAIM_PREFIXES and claim.label not in named:
                problems.append(f"{where}: claim {claim.label} has no check cell naming it")
            if claim.kind == "cor" and not claim.title.startswith("Correction:"):
                problems.append(f"{where}: {claim.label} is not titled 'Correction: ...'")
            if claim.kind == "cor" and "warning" not in claim.classes:
                problems.append(f"{where}: {claim.label} needs ':class: warning'")
            if claim.kind == "pit" and not claim.title.startswith("Pitfall:"):
                problems.append(f"{where}: {claim.label} is not titled 'Pitfall: ...'")
            if claim.kind == "pit" and "caution" not in claim.classes:
                problems.append(f"{where}: {claim.label} needs ':class: caution'")
        for check in nb.checks:
            where = f"{nb.docname} cell {check.cell_index} (In [{check.execution_count}])"
            if not check.asserts:
                problems.append(f"{where}: check cell asserts nothing that could fail")
            if check.kind not in CHECK_KINDS:
                problems.append(f"{where}: unknown check kind {check.kind!r}")
            if not check.labels:
                problems.append(f"{where}: check names no label")
            for label in check.labels:
                if label not in defined:
                    problems.append(f"{where}: check names unknown label {label!r}")
    return problems


def _first_line(cell: Mapping[str, Any]) -> str:
    first = next((ln for ln in source_of(cell).split("\n") if ln.strip()), "")
    return first if len(first) <= 50 else first[:47] + "..."


def _output_text(out: Mapping[str, Any]) -> str:
    if out.get("output_type") == "stream":
        text = out.get("text", "")
    else:
        text = out.get("data", {}).get("text/plain", "")
    return "".join(text) if isinstance(text, list) else str(text)


def chapter_problems(nb: Notebook, repository_url: str) -> list[str]:
    """Every breach of the reader rules in one chapter, each saying where (cell index, its
    first line) and what is wrong."""
    problems: list[str] = []
    code = [(i, c) for i, c in enumerate(nb.cells) if c.get("cell_type") == "code"]
    if not code:
        return [f"{nb.docname}: no code cell"]

    # 1. The setup cell, verbatim.
    first_index, first = code[0]
    if source_of(first).strip() != setup_cell(repository_url):
        problems.append(
            f"{nb.docname} cell {first_index}: the first code cell is not the setup cell of "
            f"book/AUTHORING.md for repository.url {repository_url!r} (verbatim)"
        )

    glued: dict[str, int] = {}
    for index, cell in enumerate(nb.cells):
        src = source_of(cell)
        where = f"{nb.docname} cell {index} ({_first_line(cell)!r})"
        if "NBVAL_" in src:
            problems.append(f"{where}: an NBVAL_ comment; use the cell tag nbval-ignore-output")
        if "inspect.getsource" in src:
            problems.append(
                f"{where}: inspect.getsource prints source; link the API entry or "
                "{literalinclude} the lines"
            )
        if cell.get("cell_type") == "markdown":
            if "({eq}`" in src:
                problems.append(f"{where}: '({{eq}}`' prints double parentheses; write {{eq}} bare")
            continue
        if cell.get("cell_type") != "code":
            continue
        # The setup cell is verbatim, so its two long lines are the contract's, not the author's.
        long_ok = index == first_index and src.strip() == setup_cell(repository_url)
        for n, line in enumerate(src.split("\n"), 1):
            if len(line) > LINE_LENGTH and not long_ok:
                problems.append(f"{where} line {n}: {len(line)} > {LINE_LENGTH} characters")
        if re.search(r"\bplt\.show\(", src):
            problems.append(f"{where}: plt.show() makes a bare figure; glue it (see AUTHORING)")
        for module in sorted(imported_modules(src)):
            if module not in ALLOWED_IMPORTS and module not in sys.stdlib_module_names:
                problems.append(f"{where}: imports {module!r}, which a reader's install lacks")
        for out in cell.get("outputs", []):
            for n, line in enumerate(_output_text(out).split("\n"), 1):
                if len(line) > LINE_LENGTH:
                    problems.append(
                        f"{where}: output line {n} has {len(line)} > {LINE_LENGTH} characters"
                    )
            data = out.get("data", {})
            images = [
                k.removeprefix(_GLUE_PREFIX)
                for k in data
                if _IMAGE.match(k.removeprefix(_GLUE_PREFIX))
            ]
            if not images:
                continue
            meta = out.get("metadata", {}).get("scrapbook", {})
            name = meta.get("name")
            if not name:
                problems.append(
                    f"{where}: a bare image output; glue it as fig-... (see AUTHORING), or "
                    "re-execute if the source glues it already"
                )
            elif not meta.get("mime_prefix"):
                problems.append(
                    f"{where}: figure {name!r} is glued with display=True (shown twice)"
                )
            else:
                glued[name] = index

    # 2. Check cells are collapsed.
    for check in nb.checks:
        if "hide-input" not in check.tags:
            head = _first_line(nb.cells[check.cell_index])
            problems.append(
                f"{nb.docname} cell {check.cell_index} ({head!r}): check cell lacks the tag "
                "hide-input"
            )

    # 3. Figures: every glued image has a {glue:figure} with a name and a caption.
    figures = {d.arg: d for d in nb.directives if d.name in ("glue:figure", "glue:any")}
    for name, index in glued.items():
        d = figures.get(name)
        if d is None:
            problems.append(
                f"{nb.docname} cell {index}: glued figure {name!r} has no {{glue:figure}} directive"
            )
            continue
        if not d.options.get("name"):
            problems.append(
                f"{nb.docname} cell {d.cell_index}: {{glue:figure}} {name} has no :name:"
            )
        if not d.body.strip():
            problems.append(
                f"{nb.docname} cell {d.cell_index}: {{glue:figure}} {name} has no caption"
            )
    for name, d in figures.items():
        if name not in glued:
            problems.append(
                f"{nb.docname} cell {d.cell_index}: {{glue:figure}} {name!r} names no glued image"
            )

    # 4. Exercises, each with a collapsed solution.
    exercises = [d for d in nb.directives if d.name == "exercise"]
    solutions = {d.arg: d for d in nb.directives if d.name == "solution"}
    if len(exercises) < MIN_EXERCISES:
        problems.append(
            f"{nb.docname}: {len(exercises)} {{exercise}} directives, at least "
            f"{MIN_EXERCISES} needed"
        )
    for ex in exercises:
        label = ex.options.get("label", "")
        where = f"{nb.docname} cell {ex.cell_index}: exercise {label or ex.arg!r}"
        if not label.startswith("ex-"):
            problems.append(f"{where} needs ':label: ex-...'")
            continue
        sol = solutions.get(label)
        if sol is None:
            problems.append(f"{where} has no {{solution}} {label}")
        elif "dropdown" not in sol.options.get("class", "").split():
            problems.append(f"{where}: its solution needs ':class: dropdown'")

    # 5. Both kinds of check.
    kinds = {c.kind for c in nb.checks}
    for kind in CHECK_KINDS:
        if kind not in kinds:
            problems.append(f"{nb.docname}: no check[{kind}] cell")
    return problems
