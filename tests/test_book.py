"""The built book: a -W -n build, generated appendices that are complete, no CDN, and a real
browser (Debian's Chromium through Playwright, on 127.0.0.1) that typesets every page offline with
no console errors, and reads the chapters as a reader does at 1280 px and at 390 px (a phone):
collapsed check cells, little visible code, equations that fit, a navigation toggle that works,
and an API page without raw reST. Screenshots go to _build/screenshots/."""

from __future__ import annotations

import functools
import http.server
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest

import rlnotes
from conftest import ROOT, load_contract, load_rlbook

HTML = ROOT / "_build" / "html"
SHOTS = Path(os.environ.get("RLBOOK_HTML") or HTML).parent / "screenshots"
CHROMIUM = "/usr/bin/chromium"
BENIGN_CONSOLE = ("Got invalid theme mode",)
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]
#: Written by ``make pdf``; linked from the landing page, absent until the PDF is built.
PDF_NAME = "rlnotes-book.pdf"


@pytest.fixture(scope="module")
def built() -> Path:
    """Build the whole book from scratch with warnings as errors (or, with the environment
    variable RLBOOK_HTML set, test the HTML already built there)."""
    if os.environ.get("RLBOOK_HTML"):
        return Path(os.environ["RLBOOK_HTML"])
    jb = Path(sys.executable).with_name("jupyter-book")
    proc = subprocess.run(
        [str(jb), "build", str(ROOT), "-W", "-n", "--keep-going", "--all"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-6000:]
    return HTML


def pages(html: Path) -> list[Path]:
    skip = {"_static", "_sources", "_images", "_sphinx_design_static"}
    return sorted(p for p in html.rglob("*.html") if not skip & set(p.relative_to(html).parts))


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.hrefs: list[str] = []
        self.external_assets: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(a["id"] or "")
        if a.get("name") and tag == "a":
            self.ids.add(a["name"] or "")
        if tag == "a" and a.get("href"):
            self.hrefs.append(a["href"] or "")
        src = a.get("src") if tag in ("script", "img", "iframe") else None
        if tag == "link" and a.get("rel") != "canonical":
            src = a.get("href")
        if src and re.match(r"(https?:)?//", src):
            self.external_assets.append(f"<{tag}> {src}")


@functools.cache
def parsed(path: Path) -> _Links:
    p = _Links()
    p.feed(path.read_text(encoding="utf-8"))
    return p


def test_build_has_every_toc_page(built: Path) -> None:
    names = {p.relative_to(built).as_posix() for p in pages(built)}
    for doc in ("book/intro", "book/01-score-function", "book/appendices/api"):
        assert f"{doc}.html" in names


def test_html_loads_nothing_from_a_cdn(built: Path) -> None:
    offenders = [f"{p.name}: {a}" for p in pages(built) for a in parsed(p).external_assets]
    assert not offenders, "\n".join(offenders[:20])
    cdn = re.compile(r"cdn\.jsdelivr|unpkg\.com|cdnjs|googleapis|polyfill\.io|require\.js")
    for p in pages(built):
        hit = cdn.search(p.read_text(encoding="utf-8"))
        assert hit is None, f"{p.name} mentions a CDN: {hit and hit.group(0)}"
    assert (built / "_static" / "mathjax" / "es5" / "tex-chtml-full.js").exists()


def test_every_internal_link_resolves(built: Path) -> None:
    broken: list[str] = []
    for page in pages(built):
        for href in parsed(page).hrefs:
            parts = urlsplit(href)
            if parts.scheme or parts.netloc or href.startswith(("mailto:", "javascript:")):
                continue
            if parts.path.endswith(PDF_NAME):  # made by `make pdf`, tested in test_pdf.py
                continue
            target = page if not parts.path else (page.parent / unquote(parts.path)).resolve()
            if target.is_dir():
                target = target / "index.html"
            if not target.exists():
                broken.append(f"{page.relative_to(built)} -> {href}")
            elif parts.fragment and target.suffix == ".html":
                if unquote(parts.fragment) not in parsed(target).ids:
                    broken.append(f"{page.relative_to(built)} -> {href} (no such anchor)")
    assert not broken, "\n".join(broken[:30])


def test_api_appendix_documents_every_public_symbol(built: Path) -> None:
    ids = parsed(built / "book" / "appendices" / "api.html").ids
    missing = [
        name for name in rlnotes.__all__ if f"{getattr(rlnotes, name).__module__}.{name}" not in ids
    ]
    assert not missing, f"not in the API appendix: {missing}"


def test_errata_and_ledger_list_every_claim(built: Path) -> None:
    book = load_rlbook().toc_notebooks(ROOT)
    errata = (built / "book" / "appendices" / "errata.html").read_text(encoding="utf-8")
    ledger = (built / "book" / "appendices" / "ledger.html").read_text(encoding="utf-8")
    assert "unchecked" not in ledger
    n_corrections = 0
    for nb in book:
        chapter = parsed(built / f"{nb.docname}.html").ids
        for claim in nb.claims:
            anchor = f"equation-{claim.label}" if claim.kind == "eq" else claim.label
            if claim.kind not in ("eq", "thm", "lem", "cor", "pit"):
                continue
            assert anchor in chapter, f"{claim.label} has no anchor in {nb.docname}.html"
            assert f'#{anchor}"' in ledger, f"{claim.label} missing from the ledger"
            if claim.kind in ("cor", "pit"):
                n_corrections += claim.kind == "cor"
                assert f'#{anchor}"' in errata, f"{claim.label} missing from the errata"
        for check in nb.checks:
            assert f'id="{check.anchor}"' in (built / f"{nb.docname}.html").read_text(
                encoding="utf-8"
            ), f"check cell {check.cell_index} of {nb.docname} has no anchor"
            assert f'#{check.anchor}"' in ledger, f"the ledger does not link {check.anchor}"
    assert n_corrections >= 1
    assert errata.count("see the correction") == n_corrections
    assert "Pitfalls (not errors of the notes)" in errata


def test_landing_page_lists_the_chapters_that_exist(built: Path) -> None:
    intro = (built / "book" / "intro.html").read_text(encoding="utf-8")
    for nb in load_rlbook().toc_notebooks(ROOT):
        if load_contract().is_chapter(nb.path):
            assert f'href="{Path(nb.docname).name}.html"' in intro, f"intro omits {nb.docname}"
    toc = [doc for _, docs in load_rlbook().toc_entries(ROOT) for doc in docs]
    for doc in toc:
        assert (ROOT / doc).with_suffix(".ipynb").exists() or (ROOT / doc).with_suffix(
            ".md"
        ).exists(), f"_toc.yml lists {doc}, which does not exist"
    assert "Reading order" in intro and "Prerequisites" in intro


@pytest.fixture(scope="module")
def server(built: Path) -> Iterator[str]:
    handler = functools.partial(_QuietHandler, directory=str(built))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


def test_every_page_renders_offline_in_chromium(built: Path, server: str, browser: Any) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    typeset = 0
    for page_path in pages(built):
        rel = page_path.relative_to(built).as_posix()
        if rel.startswith("_modules/"):  # highlighted sources (viewcode): no math, no script
            continue
        if rel == "index.html":  # Jupyter Book's redirect to the root page
            assert "book/intro.html" in page_path.read_text(encoding="utf-8")
            continue
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        requests: list[str] = []
        errors: list[str] = []
        page.on("request", lambda r, requests=requests: requests.append(r.url))
        page.on(
            "console",
            lambda m, errors=errors: m.type == "error" and errors.append(m.text),
        )
        page.on("pageerror", lambda e, errors=errors: errors.append(str(e)))
        page.goto(f"{server}/{rel}", wait_until="load")
        has_math = page.evaluate("typeof MathJax !== 'undefined' && !!MathJax.startup")
        if has_math:
            page.evaluate("MathJax.startup.promise")
        stats = page.evaluate(
            """() => {
                const c = document.body.cloneNode(true);
                c.querySelectorAll('pre, code, script, style, mjx-container, textarea')
                 .forEach(e => e.remove());
                const t = c.textContent;
                return {math: document.querySelectorAll('mjx-container').length,
                        merror: document.querySelectorAll('mjx-merror').length,
                        raw: (t.includes('$$') || t.includes('\\\\[') || t.includes('\\\\('))};
            }"""
        )
        typeset += stats["math"]
        if stats["merror"]:
            problems.append(f"{rel}: {stats['merror']} MathJax error nodes")
        if stats["raw"]:
            problems.append(f"{rel}: raw TeX delimiters left untypeset")
        off = [u for u in requests if not u.startswith((server, "data:", "blob:", "about:"))]
        if off:
            problems.append(f"{rel}: requests left 127.0.0.1: {off[:5]}")
        bad = [e for e in errors if not any(b in e for b in BENIGN_CONSOLE)]
        if bad:
            problems.append(f"{rel}: console errors: {bad[:5]}")
        if re.match(r"book/(\d\d-|appendices/)", rel):
            page.screenshot(path=str(SHOTS / (Path(rel).stem + ".png")), full_page=False)
        page.close()
    assert not problems, "\n".join(problems)
    assert typeset > 50, f"only {typeset} typeset formulas in the whole book"


# --------------------------------------------------------------------------- reading


#: Measured in the page: check cells, visible code, equations, and the text around numbers.
READER_JS = r"""() => {
  const visible = (e) => {
    const r = e.getBoundingClientRect(), s = getComputedStyle(e);
    return r.width > 0 && r.height > 0 && s.visibility !== 'hidden' && s.display !== 'none';
  };
  const article = document.querySelector('article.bd-article');
  const articleBox = article.getBoundingClientRect();
  // Check cells: their input sits in a closed <details>.
  const checks = [...article.querySelectorAll('div.cell[id^="check-"]')];
  const open = checks.filter((c) => {
    const input = c.querySelector('div.cell_input');
    return !input || !input.closest('details:not([open])');
  }).map((c) => c.id);
  // Visible code: open code cell inputs and literal code blocks of the prose (not outputs).
  let code = 0;
  article.querySelectorAll('div.cell_input, div.highlight').forEach((e) => {
    if (e.closest('div.cell_output')) return;
    if (e.matches('div.highlight') && e.closest('div.cell_input')) return;
    if (e.closest('details:not([open])') || !visible(e)) return;
    code += e.getBoundingClientRect().height;
  });
  // Display equations: overflow only with a scroll bar; the number beside the formula.
  const overflow = [], overlap = [];
  article.querySelectorAll('div.math').forEach((m) => {
    const jax = m.querySelector('mjx-container');
    if (!jax) return;
    const box = m.getBoundingClientRect(), jb = jax.getBoundingClientRect();
    const ox = getComputedStyle(jax).overflowX;
    const scrolls = (ox === 'auto' || ox === 'scroll');
    const clipped = jax.scrollWidth > jax.clientWidth + 1;
    const sticksOut = jb.right > articleBox.right + 1 || box.right > articleBox.right + 1;
    if ((clipped && !scrolls) || sticksOut) overflow.push(m.id || jax.textContent.slice(0, 40));
    const no = m.querySelector('span.eqno');
    if (no) {
      const nb = no.getBoundingClientRect();
      const inner = jax.firstElementChild ? jax.firstElementChild.getBoundingClientRect() : jb;
      const right = Math.min(inner.right, jb.right);
      const hit = nb.left < right - 1 && nb.right > inner.left + 1 &&
                  nb.top < inner.bottom - 1 && nb.bottom > inner.top + 1;
      if (hit) overlap.push(m.id);
    }
  });
  // Inline math: cut off by its box without a scroll bar.
  const clipped = [...article.querySelectorAll('span.math')].filter((s) => {
    const jax = s.querySelector('mjx-math');
    if (!jax) return false;
    const sb = s.getBoundingClientRect(), jb = jax.getBoundingClientRect();
    const ox = getComputedStyle(s).overflowX;
    const out = jb.right > sb.right + 1 || jb.left < sb.left - 1;
    return out && !(ox === 'auto' || ox === 'scroll');
  }).map((s) => s.textContent.slice(0, 40));
  const text = article.innerText;
  const doubled = text.match(/\(\(\d+(\.\d+)*\)\)/g) || [];
  return {checks: checks.length, open, code, height: articleBox.height,
          overflow, overlap, clipped, doubled};
}"""


def chapter_pages(html: Path) -> list[str]:
    contract = load_contract()
    return [
        p.relative_to(html).as_posix()
        for p in pages(html)
        if p.parent.name == "book" and contract.is_chapter(p.with_suffix(".ipynb"))
    ]


@pytest.fixture(scope="module")
def browser(built: Path) -> Iterator[object]:
    if not Path(CHROMIUM).exists() or shutil.which("chromium") is None:
        pytest.fail("chromium is missing: run `apt-get install -y chromium` (as .ci/run does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


def _open(browser: object, url: str, width: int) -> object:
    page = browser.new_page(viewport={"width": width, "height": 900})  # type: ignore[attr-defined]
    page.goto(url, wait_until="load")
    if page.evaluate("typeof MathJax !== 'undefined' && !!MathJax.startup"):
        page.evaluate("MathJax.startup.promise")
    return page


@pytest.mark.parametrize("width", [1280, 390])
def test_chapters_read_well(built: Path, server: str, browser: object, width: int) -> None:
    """At each width: every check cell collapsed; visible code at most a third of the chapter;
    no "((n.m))"; no display equation overflowing without a scroll bar; no equation number on
    its formula."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    contract = load_contract()
    problems: list[str] = []
    for rel in chapter_pages(built):
        page = _open(browser, f"{server}/{rel}", width)
        stats = page.evaluate(READER_JS)  # type: ignore[attr-defined]
        page.screenshot(path=str(SHOTS / f"{Path(rel).stem}-{width}.png"))  # type: ignore[attr-defined]
        page.close()  # type: ignore[attr-defined]
        n_checks = len(contract.parse_notebook((ROOT / rel).with_suffix(".ipynb"), ROOT).checks)
        where = f"{rel} at {width} px"
        if stats["checks"] != n_checks:
            problems.append(
                f"{where}: {stats['checks']} check cells anchored, {n_checks} in the notebook"
            )
        if stats["open"]:
            problems.append(f"{where}: check cells not collapsed: {stats['open'][:8]}")
        share = stats["code"] / stats["height"]
        if share > 1 / 3:
            problems.append(f"{where}: visible code is {share:.0%} of the page (at most 33%)")
        if stats["doubled"]:
            problems.append(f"{where}: doubled parentheses {stats['doubled'][:5]}")
        if stats["overflow"]:
            problems.append(
                f"{where}: equations overflow without a scroll bar: {stats['overflow'][:5]}"
            )
        if stats["clipped"]:
            problems.append(f"{where}: inline math cut off: {stats['clipped'][:5]}")
        if stats["overlap"]:
            problems.append(f"{where}: equation numbers overlap formulas: {stats['overlap'][:5]}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("width", [1280, 390])
def test_navigation_toggle_and_one_search_field(
    built: Path, server: str, browser: object, width: int
) -> None:
    page = _open(browser, f"{server}/book/intro.html", width)
    toggles = page.locator(".primary-toggle:visible")  # type: ignore[attr-defined]
    assert toggles.count() == 1, f"{toggles.count()} visible navigation toggles at {width} px"
    fields = page.locator(".search-button-field:visible, .search-button:visible")  # type: ignore[attr-defined]
    assert fields.count() == 1, f"{fields.count()} visible search controls at {width} px"
    toggles.first.click()
    page.wait_for_timeout(400)  # type: ignore[attr-defined]
    if width < 992:
        state = page.evaluate(  # type: ignore[attr-defined]
            """() => { const d = document.getElementById('pst-primary-sidebar-modal');
                 const links = d ? [...d.querySelectorAll('nav a')].filter(a =>
                     a.getBoundingClientRect().height > 0) : [];
                 return {open: !!(d && d.open), links: links.length}; }"""
        )
        page.screenshot(path=str(SHOTS / f"navigation-{width}.png"))  # type: ignore[attr-defined]
        assert state["open"], "the toggle does not open the navigation"
        assert state["links"] >= 3, f"the open navigation shows {state['links']} links"
    else:
        hidden = page.evaluate(  # type: ignore[attr-defined]
            "document.getElementById('pst-primary-sidebar').classList.contains('pst-sidebar-hidden')"
        )
        assert hidden, "the toggle does not hide the sidebar at desktop width"
    page.close()  # type: ignore[attr-defined]


def test_api_page_has_one_rendering_per_entry(built: Path, server: str, browser: object) -> None:
    page = _open(browser, f"{server}/book/appendices/api.html", 1280)
    stats = page.evaluate(  # type: ignore[attr-defined]
        r"""() => {
          const article = document.querySelector('article.bd-article');
          const entries = [...article.querySelectorAll('dl.py.function, dl.py.class')];
          const twice = entries.filter((dl) => {
            const dd = dl.querySelector(':scope > dd');
            const dts = dd ? [...dd.querySelectorAll(':scope > dl.field-list > dt')] : [];
            return dts.filter((dt) => dt.textContent.trim().startsWith('Parameters')).length > 1;
          }).map((dl) => dl.querySelector('dt').id);
          const RAW = new RegExp([':(math|func|class|meth|attr|obj|eq|ref):`', '``',
            '\\.\\. \\w+::', ':param ', '\\(Any\\)', 'ndarray\\[tuple'].join('|'));
          const raw = [];
          entries.forEach((dl) => {
            const c = dl.cloneNode(true);
            c.querySelectorAll('pre, script, style, mjx-container, dl.py')
              .forEach((e) => e.remove());
            const hit = c.textContent.match(RAW);
            if (hit) raw.push(`${dl.querySelector('dt').id}: ${hit[0]}`);
          });
          return {entries: entries.length, twice, raw};
        }"""
    )
    page.screenshot(path=str(SHOTS / "api-1280.png"))  # type: ignore[attr-defined]
    page.close()  # type: ignore[attr-defined]
    assert stats["entries"] >= 30
    assert not stats["twice"], f"entries with two Parameters blocks: {stats['twice']}"
    assert not stats["raw"], "raw reST on the API page:\n" + "\n".join(stats["raw"])
    api = (built / "book" / "appendices" / "api.html").read_text(encoding="utf-8")
    assert re.search(r"Book: <a class=\"reference internal\" href=\"[^\"]*#equation-", api), (
        "no 'Book: eq-...' reference is a link to its equation"
    )


# --------------------------------------------------------------------------- the PDF


@pytest.fixture(scope="module")
def pdf(built: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """`make pdf`'s printer run on the built HTML: the PDF and its text (pdftotext -raw keeps
    the order of the content stream, so a wrapped code line reads as one)."""
    if shutil.which("pdftotext") is None:
        pytest.fail("pdftotext is missing: run `apt-get install -y poppler-utils`")
    out = tmp_path_factory.mktemp("pdf") / PDF_NAME
    proc = subprocess.run(
        [sys.executable, str(ROOT / "book" / "_ext" / "print_pdf.py"), str(built), str(out)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    shutil.copy(out, built / PDF_NAME)  # where `make pdf` puts it, next to the HTML
    text = subprocess.run(
        ["pdftotext", "-raw", str(out), "-"], capture_output=True, text=True, check=True
    ).stdout
    return out, text


def test_pdf_has_every_chapter_and_its_parts(pdf: tuple[Path, str]) -> None:
    from pypdf import PdfReader

    path, text = pdf
    reader = PdfReader(path)
    contract = load_contract()
    chapters = [nb for nb in load_rlbook().toc_notebooks(ROOT) if contract.is_chapter(nb.path)]
    flat = re.sub(r"\s+", " ", text)
    assert len(reader.pages) >= 10 * len(chapters), f"only {len(reader.pages)} pages"
    outline = [
        t for item in reader.outline if not isinstance(item, list) if (t := item.title) is not None
    ]
    for nb in chapters:
        assert any(nb.title in t for t in outline), f"no bookmark for {nb.title!r}"
        assert nb.title in flat, f"chapter title {nb.title!r} is not in the PDF's text"
    n = len(chapters)
    for k in range(1, n + 1):
        assert f"({k}.1)" in flat, f"chapter {k}'s equations are not numbered in the PDF"
    assert "Proof." in flat
    images = sum(len(page.images) for page in reader.pages)
    assert images >= n, f"{images} images in the PDF"
    assert "Show code cell source" not in flat  # no dead toggles on paper
    intro = (ROOT / "book" / "intro.md").read_text(encoding="utf-8")
    assert f'href="../{PDF_NAME}"' in intro, "the landing page does not link the PDF"


def test_pdf_cuts_no_code_line(pdf: tuple[Path, str]) -> None:
    """Every line of open (teaching) code is in the PDF whole: printed code wraps at the
    margin instead of running off it. Whitespace is ignored, so a wrapped line still matches."""
    _, text = pdf
    squeezed = re.sub(r"\s+", "", text)
    contract = load_contract()
    cut: list[str] = []
    checked = 0
    for nb in load_rlbook().toc_notebooks(ROOT):
        if not contract.is_chapter(nb.path):
            continue
        for index, cell in enumerate(nb.cells):
            tags = cell.get("metadata", {}).get("tags", [])
            if cell.get("cell_type") != "code" or {"hide-input", "remove-input"} & set(tags):
                continue
            for line in contract.source_of(cell).split("\n"):
                key = re.sub(r"\s+", "", line)
                if len(key) < 4:
                    continue
                checked += 1
                if key not in squeezed:
                    cut.append(f"{nb.docname} cell {index}: {line.strip()[:70]}")
    assert checked > 50
    assert not cut, f"{len(cut)} code lines are cut or missing in the PDF:\n" + "\n".join(cut[:20])


def test_search_snippets_show_no_raw_tex(built: Path, server: str, browser: object) -> None:
    page = _open(browser, f"{server}/search.html?q=contraction", 1280)
    page.wait_for_selector("ul.search li p.context", timeout=30_000)  # type: ignore[attr-defined]
    snippets = page.evaluate(  # type: ignore[attr-defined]
        "[...document.querySelectorAll('ul.search li p.context')].map((p) => p.textContent)"
    )
    page.close()  # type: ignore[attr-defined]
    assert snippets, "the search found nothing for 'contraction'"
    raw = [s[:80] for s in snippets if re.search(r"\\[()\[\]{}]|\\[a-zA-Z]{2,}", s)]
    assert not raw, f"search snippets with raw TeX: {raw}"
