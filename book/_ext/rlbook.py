"""Sphinx extension of the book: the generated appendices.

- ``{verification-ledger}``: a table with a row per labelled claim of every chapter notebook, the
  check cells that name it, and their kind (symbolic or numeric).
- ``{errata-list}``: every ``Correction`` admonition of the book, with a link back to it.
- ``{rlnotes-api}``: autodoc of every symbol in ``rlnotes.__all__``, grouped by module.

The notebook parser below is also what ``tests/test_notebooks.py`` uses to enforce the chapter
contract, so the ledger and the contract test can never disagree.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Prefixes of labels that claim something and therefore need a check.
CLAIM_PREFIXES = ("eq", "thm", "lem", "cor")
#: Prefixes of labels that only name something (no check needed).
NAME_PREFIXES = ("def",)

_EQ_LABEL = re.compile(r"\$\$\s*\((?P<label>[a-z]+-[A-Za-z0-9_-]+)\)")
_DIRECTIVE = re.compile(
    r"^(?P<fence>`{3,}|:{3,})\{(?P<name>[a-z:]+)\}[ \t]*(?P<arg>[^\n]*)\n"
    r"(?P<opts>(?:[ \t]*:[a-z-]+:[^\n]*\n)*)"
    r"(?P<body>.*?)^(?P=fence)[ \t]*$",
    re.M | re.S,
)
_OPTION = re.compile(r"^[ \t]*:(?P<key>[a-z-]+):[ \t]*(?P<value>[^\n]*)$", re.M)
_CHECK = re.compile(r"^\s*#\s*check\[(?P<kind>[a-z]+)\]:\s*(?P<labels>[^\n]*)$")
CHECK_KINDS = ("symbolic", "numeric")


@dataclass
class Claim:
    """A labelled claim (equation, theorem, lemma or correction) of one notebook."""

    label: str
    kind: str  # eq, thm, lem, cor, def
    docname: str
    title: str = ""
    body: str = ""


@dataclass
class Check:
    """A check cell: its position, kind, the labels it names and whether it asserts."""

    docname: str
    cell_index: int
    execution_count: int | None
    kind: str
    labels: list[str]
    asserts: bool


@dataclass
class Notebook:
    """What the contract cares about in one chapter notebook."""

    path: Path
    docname: str
    title: str
    claims: list[Claim] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)


def _source(cell: dict[str, Any]) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


def parse_notebook(path: Path, root: Path) -> Notebook:
    """Collect the labelled claims and check cells of the notebook at ``path``."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    docname = path.relative_to(root).with_suffix("").as_posix()
    title = ""
    claims: list[Claim] = []
    checks: list[Check] = []
    for index, cell in enumerate(nb["cells"]):
        text = _source(cell)
        if cell["cell_type"] == "markdown":
            if not title:
                heading = re.search(r"^#\s+(.+)$", text, re.M)
                title = heading.group(1).strip() if heading else ""
            for m in _EQ_LABEL.finditer(text):
                claims.append(Claim(m["label"], m["label"].split("-")[0], docname))
            for m in _DIRECTIVE.finditer(text):
                opts = {o["key"]: o["value"].strip() for o in _OPTION.finditer(m["opts"])}
                label = opts.get("label") or opts.get("name")
                if label:
                    claims.append(
                        Claim(label, label.split("-")[0], docname, m["arg"].strip(), m["body"])
                    )
        elif cell["cell_type"] == "code":
            first = text.lstrip("\n").split("\n", 1)[0]
            m = _CHECK.match(first)
            if m:
                labels = [x.strip() for x in m["labels"].split(",") if x.strip()]
                asserts = re.search(r"\bassert\b", text) is not None
                checks.append(
                    Check(docname, index, cell.get("execution_count"), m["kind"], labels, asserts)
                )
    return Notebook(path, docname, title, claims, checks)


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


# --------------------------------------------------------------------------- rendering


def _claim_ref(claim: Claim) -> str:
    if claim.kind == "eq":
        return f"{{eq}}`{claim.label}`"
    if claim.kind in ("thm", "lem", "def"):
        return f"{{prf:ref}}`{claim.label}`"
    title = claim.title or claim.label
    return f"{{ref}}`{title} <{claim.label}>`"


def ledger_markdown(notebooks: list[Notebook]) -> str:
    """The verification ledger as a MyST table."""
    rows = [
        "| Chapter | Claim | Label | Check cells | Kind |",
        "| :-- | :-- | :-- | :-- | :-- |",
    ]
    for nb in notebooks:
        for claim in nb.claims:
            if claim.kind not in CLAIM_PREFIXES:
                continue
            named = [c for c in nb.checks if claim.label in c.labels]
            named += [
                c
                for other in notebooks
                if other is not nb
                for c in other.checks
                if claim.label in c.labels
            ]
            cells = ", ".join(
                f"In [{c.execution_count}]"
                if c.docname == nb.docname
                else f"In [{c.execution_count}] of {{doc}}`/{c.docname}`"
                for c in named
            )
            kinds = ", ".join(sorted({c.kind for c in named})) or "**unchecked**"
            rows.append(
                f"| {{doc}}`/{nb.docname}` | {_claim_ref(claim)} | `{claim.label}` "
                f"| {cells or '—'} | {kinds} |"
            )
    return "\n".join(rows) + "\n"


def errata_markdown(notebooks: list[Notebook]) -> str:
    """Every correction of the book: its title, a link back, and its text."""
    parts: list[str] = []
    for nb in notebooks:
        for claim in nb.claims:
            if claim.kind != "cor":
                continue
            title = claim.title.removeprefix("Correction:").strip() or claim.label
            title = title[:1].upper() + title[1:]
            # The body is shown again here, so its equation labels must not be defined twice.
            body = _EQ_LABEL.sub("$$", claim.body.strip())
            parts.append(
                f"**{title}** — {{doc}}`/{nb.docname}`, {{ref}}`see the correction <{claim.label}>`"
                f"\n\n{body}\n"
            )
    return "\n---\n\n".join(parts) if parts else "No corrections yet.\n"


def api_markdown() -> str:
    """Autodoc directives for every public symbol of rlnotes, grouped by defining module."""
    import rlnotes

    by_module: dict[str, list[str]] = {}
    for name in rlnotes.__all__:
        module = getattr(getattr(rlnotes, name), "__module__", "rlnotes")
        by_module.setdefault(module, []).append(name)
    out: list[str] = []
    for module, names in by_module.items():
        # eval-rst: autodoc's output is reStructuredText, so it must be parsed as such.
        out.append(
            f"```{{eval-rst}}\n.. rubric:: {module}\n\n.. automodule:: {module}\n"
            f"   :members: {', '.join(names)}\n```\n"
        )
    return "\n".join(out)


# --------------------------------------------------------------------------- directives


def _mentions_thebe(asset: Any) -> bool:
    filename = str(getattr(asset, "filename", asset) or "")
    body = str(getattr(asset, "attributes", {}).get("body", ""))
    return "thebe" in filename or "thebe" in body


def _drop_thebe_assets(
    app: Any, pagename: str, templatename: str, context: dict[str, Any], doctree: Any
) -> None:
    """Drop sphinx-thebe's assets: live code (Thebe) is off in _config.yml, yet the extension still
    injects its loader on every page, twice and with a CDN address."""
    for key in ("script_files", "css_files"):
        if key in context:
            context[key] = [a for a in context[key] if not _mentions_thebe(a)]


def setup(app: Any) -> dict[str, Any]:
    from docutils import nodes
    from docutils.statemachine import StringList
    from sphinx.util.docutils import SphinxDirective

    class _Generated(SphinxDirective):
        has_content = False

        def markdown(self) -> str:
            raise NotImplementedError

        def run(self) -> list[Any]:
            root = Path(self.env.srcdir)
            for path in chapter_notebooks(root):
                self.env.note_dependency(str(path))
            container = nodes.container()
            text = self.markdown()
            self.state.nested_parse(StringList(text.splitlines()), self.content_offset, container)
            return container.children

    class VerificationLedger(_Generated):
        def markdown(self) -> str:
            return ledger_markdown(parse_book(Path(self.env.srcdir)))

    class ErrataList(_Generated):
        def markdown(self) -> str:
            return errata_markdown(parse_book(Path(self.env.srcdir)))

    class RlnotesApi(_Generated):
        def markdown(self) -> str:
            return api_markdown()

    def title_corrections(app: Any, doctree: Any) -> None:
        """Give each Correction admonition its title as reference text, so that a plain
        ``{ref}`cor-...``` works as it does for a section."""
        std = app.env.get_domain("std")
        for node in doctree.findall(nodes.admonition):
            title = node.next_node(nodes.title)
            for name in node["names"]:
                if name.startswith("cor-") and title is not None and node["ids"]:
                    std.labels[name] = (app.env.docname, node["ids"][0], title.astext())

    app.connect("doctree-read", title_corrections)
    app.connect("html-page-context", _drop_thebe_assets)
    app.add_directive("verification-ledger", VerificationLedger)
    app.add_directive("errata-list", ErrataList)
    app.add_directive("rlnotes-api", RlnotesApi)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
