"""Sphinx extension of the book: generated pages and the hooks that make the HTML readable.

Directives (each regenerated from the notebooks on every build):

- ``{verification-ledger}``: a row per labelled claim, the check cells naming it (linked to the
  cell), and their kind.
- ``{errata-list} cor`` / ``{errata-list} pit``: every Correction of the notes, or every Pitfall.
- ``{book-contents}``: the parts and chapters of ``_toc.yml`` as they exist, with their counts.
- ``{rlnotes-api}``: autodoc of every symbol in ``rlnotes.__all__``, grouped by module.

Hooks: check cells get an anchor (``check-<doc>-<cell>``) that the ledger links to; Correction and
Pitfall admonitions get their title as reference text; "Book: eq-..." in a docstring becomes a
link to the equation; sphinx-thebe's unused assets are dropped.

The parsing itself lives in ``contract.py`` (pure, unit-tested); this module only renders.
"""

from __future__ import annotations

import functools
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import contract  # noqa: E402
from contract import Claim, Notebook  # noqa: E402

__all__ = [
    "book_label_roles",
    "contents_markdown",
    "errata_markdown",
    "ledger_markdown",
    "setup",
    "toc_entries",
    "toc_notebooks",
]

_LABEL_TOKEN = re.compile(r"(?<![`\w-])((?:eq|thm|lem|cor|pit|def)-[a-z0-9]+(?:-[a-z0-9]+)*)\b")
_BOOK_SPAN = re.compile(r"Book:(?P<span>.*?)(?=Source:|\n[ \t]*\n|\Z)", re.S)


# --------------------------------------------------------------------------- rendering


def _claim_ref(claim: Claim) -> str:
    if claim.kind == "eq":
        return f"{{eq}}`{claim.label}`"
    if claim.kind in ("thm", "lem", "def"):
        return f"{{prf:ref}}`{claim.label}`"
    # The ledger is a table: a "|" in a title would end the cell (GFM unescapes "\|" inside
    # the role's text, so the title keeps its bar).
    title = _short_title(claim).replace("|", "\\|").replace("`", "'")
    return f"{{ref}}`{title} <{claim.label}>`"


def _short_title(claim: Claim) -> str:
    title = claim.title
    for prefix in ("Correction:", "Pitfall:"):
        title = title.removeprefix(prefix)
    title = title.strip() or claim.label
    return title[:1].upper() + title[1:]


def ledger_markdown(notebooks: Sequence[Notebook]) -> str:
    """The verification ledger as a MyST table; "In [n]" links to the check cell."""
    rows = [
        "| Chapter | Claim | Label | Check cells | Kind |",
        "| :-- | :-- | :-- | :-- | :-- |",
    ]
    for nb in notebooks:
        for claim in nb.claims:
            if claim.kind not in contract.CLAIM_PREFIXES:
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
                f"{{ref}}`In [{c.execution_count}] <{c.anchor}>`"
                + ("" if c.docname == nb.docname else f" of {{doc}}`/{c.docname}`")
                for c in named
            )
            kinds = ", ".join(sorted({c.kind for c in named})) or "**unchecked**"
            rows.append(
                f"| {{doc}}`/{nb.docname}` | {_claim_ref(claim)} | `{claim.label}` "
                f"| {cells or '—'} | {kinds} |"
            )
    return "\n".join(rows) + "\n"


def errata_markdown(notebooks: Sequence[Notebook], kind: str = "cor") -> str:
    """Every Correction (``kind="cor"``) or Pitfall (``"pit"``) of the book: its title, a link
    back, and its text."""
    parts: list[str] = []
    for nb in notebooks:
        for claim in nb.claims:
            if claim.kind != kind:
                continue
            # The body is shown again here, so its equation labels must not be defined twice.
            body = re.sub(r"\$\$[ \t]*\([a-z]+-[a-z0-9-]+\)", "$$", claim.body.strip())
            what = "correction" if kind == "cor" else "pitfall"
            parts.append(
                f"**{_short_title(claim)}** — {{doc}}`/{nb.docname}`, "
                f"{{ref}}`see the {what} <{claim.label}>`\n\n{body}\n"
            )
    if not parts:
        return "No corrections yet.\n" if kind == "cor" else "No pitfalls yet.\n"
    return "\n---\n\n".join(parts)


def toc_entries(root: Path) -> list[tuple[str, list[str]]]:
    """``(part caption, [docname, ...])`` of ``_toc.yml``, in reading order."""
    import yaml

    toc = yaml.safe_load((root / "_toc.yml").read_text(encoding="utf-8"))
    out: list[tuple[str, list[str]]] = []
    for part in toc.get("parts", []):
        docs = [str(c["file"]).removesuffix(".ipynb").removesuffix(".md") for c in part["chapters"]]
        out.append((str(part.get("caption", "")), docs))
    return out


def toc_notebooks(root: Path) -> list[Notebook]:
    """The notebooks the book builds: those of ``_toc.yml`` (a draft not yet in the table of
    contents is not built, so the generated pages must not link to it)."""
    listed = {doc for _, docs in toc_entries(root) for doc in docs}
    return [nb for nb in contract.parse_book(root) if nb.docname in listed]


def contents_markdown(root: Path, notebooks: Sequence[Notebook]) -> str:
    """The parts and chapters that exist, in reading order, with what each chapter verifies."""
    by_doc = {nb.docname: nb for nb in notebooks}
    lines: list[str] = []
    number = 0
    for caption, docs in toc_entries(root):
        items: list[str] = []
        for doc in docs:
            if not any((root / f"{doc}{ext}").exists() for ext in (".ipynb", ".md")):
                continue  # listed in _toc.yml but not written yet: the page lists what exists
            nb = by_doc.get(doc)
            if nb is None or not contract.is_chapter(nb.path):
                items.append(f"- {{doc}}`/{doc}`")
                continue
            number += 1
            claims = [c for c in nb.claims if c.kind in contract.CLAIM_PREFIXES]
            cors = sum(c.kind == "cor" for c in nb.claims)
            exercises = sum(d.name == "exercise" for d in nb.directives)
            facts = [f"{len(claims)} claims", f"{len(nb.checks)} check cells"]
            if cors:
                facts.append(f"{cors} correction{'s' if cors > 1 else ''} of the notes")
            if exercises:
                facts.append(f"{exercises} exercises")
            # A list item "3." starts the list at 3: chapters are numbered across parts.
            items.append(f"{number}. {{doc}}`/{doc}` ({', '.join(facts)})")
        if items:
            lines.append(f"**{caption}**\n\n" + "\n".join(items) + "\n")
    return "\n".join(lines)


def book_label_roles(text: str, defined: frozenset[str]) -> str:
    """Turn the labels after "Book:" in a docstring into reST cross-references (only labels the
    book defines; others stay text, and the contract test reports them)."""

    def role(m: re.Match[str]) -> str:
        label = m.group(1)
        if label not in defined:
            return label
        kind = label.split("-", 1)[0]
        if kind == "eq":
            return f":eq:`{label}`"
        if kind in ("thm", "lem", "def"):
            return f":prf:ref:`{label}`"
        return f":ref:`{label}`"

    def span(m: re.Match[str]) -> str:
        return "Book:" + _LABEL_TOKEN.sub(role, m.group("span"))

    return _BOOK_SPAN.sub(span, text)


def _api_markdown() -> str:
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


# --------------------------------------------------------------------------- hooks


@functools.cache
def _parsed_book(srcdir: str) -> tuple[Notebook, ...]:
    return tuple(toc_notebooks(Path(srcdir)))


def _mentions_thebe(asset: Any) -> bool:
    filename = str(getattr(asset, "filename", asset) or "")
    body = str(getattr(asset, "attributes", {}).get("body", ""))
    return "thebe" in filename or "thebe" in body


def _drop_thebe_assets(
    app: Any, pagename: str, templatename: str, context: dict[str, Any], doctree: Any
) -> None:
    """Drop sphinx-thebe's assets: live code (Thebe) is off in _config.yml, yet the extension
    still injects its loader on every page, twice and with a CDN address."""
    for key in ("script_files", "css_files"):
        if key in context:
            context[key] = [a for a in context[key] if not _mentions_thebe(a)]


def setup(app: Any) -> dict[str, Any]:
    from docutils import nodes
    from docutils.statemachine import StringList
    from sphinx.util.docutils import SphinxDirective

    class _Generated(SphinxDirective):
        has_content = False
        optional_arguments = 1

        def markdown(self, notebooks: Sequence[Notebook]) -> str:
            raise NotImplementedError

        def run(self) -> list[Any]:
            root = Path(self.env.srcdir)
            for path in contract.chapter_notebooks(root):
                self.env.note_dependency(str(path))
            self.env.note_dependency(str(root / "_toc.yml"))
            notebooks = toc_notebooks(root)
            container = nodes.container()
            text = self.markdown(notebooks)
            self.state.nested_parse(StringList(text.splitlines()), self.content_offset, container)
            return list(container.children)

    class VerificationLedger(_Generated):
        def markdown(self, notebooks: Sequence[Notebook]) -> str:
            return ledger_markdown(notebooks)

    class ErrataList(_Generated):
        def markdown(self, notebooks: Sequence[Notebook]) -> str:
            kind = self.arguments[0] if self.arguments else "cor"
            if kind not in ("cor", "pit"):
                raise self.error(f"errata-list takes 'cor' or 'pit', not {kind!r}")
            return errata_markdown(notebooks, kind)

    class BookContents(_Generated):
        def markdown(self, notebooks: Sequence[Notebook]) -> str:
            return contents_markdown(Path(self.env.srcdir), notebooks)

    class RlnotesApi(_Generated):
        def markdown(self, notebooks: Sequence[Notebook]) -> str:
            return _api_markdown()

    def label_admonitions(app: Any, doctree: Any) -> None:
        """Give each Correction and Pitfall admonition its title as reference text, so that a
        plain ``{ref}`cor-...``` works as it does for a section."""
        std = app.env.get_domain("std")
        for node in doctree.findall(nodes.admonition):
            title = node.next_node(nodes.title)
            for name in node["names"]:
                if name.startswith(("cor-", "pit-")) and title is not None and node["ids"]:
                    std.labels[name] = (app.env.docname, node["ids"][0], title.astext())

    def anchor_check_cells(app: Any, doctree: Any) -> None:
        """Give every check cell an id and a Sphinx label (``Check.anchor``) for the ledger."""
        docname = app.env.docname
        path = Path(app.env.doc2path(docname))
        if path.suffix != ".ipynb":
            return
        nb = contract.parse_notebook(path, Path(app.env.srcdir))
        checks = {c.cell_index: c for c in nb.checks}
        std = app.env.get_domain("std")
        for node in doctree.findall(nodes.container):
            if node.get("nb_element") != "cell_code":
                continue
            check = checks.get(node.get("cell_index"))
            if check is None:
                continue
            node["ids"].append(check.anchor)
            doctree.ids[check.anchor] = node
            std.anonlabels[check.anchor] = (docname, check.anchor)
            std.labels[check.anchor] = (docname, check.anchor, f"In [{check.execution_count}]")

    def link_book_labels(
        app: Any, what: str, name: str, obj: Any, options: Any, lines: list[str]
    ) -> None:
        defined = frozenset(c.label for nb in _parsed_book(app.srcdir) for c in nb.claims)
        text = book_label_roles("\n".join(lines), defined)
        lines[:] = text.split("\n")

    def resolve_public_names(app: Any, env: Any, node: Any, contnode: Any) -> Any:
        """Let ``{py:func}`rlnotes.gae``` (the name a reader imports) resolve to the entry of
        the defining module (``rlnotes.estimators.returns.gae``) on the API page."""
        target = str(node.get("reftarget", ""))
        if node.get("refdomain") != "py" or not re.fullmatch(r"rlnotes\.\w+", target):
            return None
        import rlnotes

        name = target.split(".", 1)[1]
        if name not in rlnotes.__all__:
            return None
        full = f"{getattr(rlnotes, name).__module__}.{name}"
        return env.get_domain("py").resolve_xref(
            env, node["refdoc"], app.builder, node["reftype"], full, node, contnode
        )

    app.connect("missing-reference", resolve_public_names)
    app.connect("doctree-read", label_admonitions)
    app.connect("doctree-read", anchor_check_cells)
    app.connect("autodoc-process-docstring", link_book_labels)
    app.connect("html-page-context", _drop_thebe_assets)
    app.add_directive("verification-ledger", VerificationLedger)
    app.add_directive("errata-list", ErrataList)
    app.add_directive("book-contents", BookContents)
    app.add_directive("rlnotes-api", RlnotesApi)
    app.add_css_file("rlbook.css")
    app.add_js_file("rlbook.js")
    return {"version": "2.0", "parallel_read_safe": True, "parallel_write_safe": True}
