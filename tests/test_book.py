"""The built book: a -W -n build, generated appendices that are complete, no CDN, and a real
browser that typesets every page offline with no console errors and no request off 127.0.0.1."""

from __future__ import annotations

import functools
import http.server
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

import rlnotes
from conftest import ROOT, load_rlbook

HTML = ROOT / "_build" / "html"
SHOTS = ROOT / "_build" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
BENIGN_CONSOLE = ("Got invalid theme mode",)


@pytest.fixture(scope="module")
def built() -> Path:
    """Build the whole book from scratch with warnings as errors."""
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
        name
        for name in rlnotes.__all__
        if f"{getattr(rlnotes, name).__module__}.{name}" not in ids
    ]
    assert not missing, f"not in the API appendix: {missing}"


def test_errata_and_ledger_list_every_claim(built: Path) -> None:
    book = load_rlbook().parse_book(ROOT)
    errata = (built / "book" / "appendices" / "errata.html").read_text(encoding="utf-8")
    ledger = (built / "book" / "appendices" / "ledger.html").read_text(encoding="utf-8")
    assert "unchecked" not in ledger
    n_corrections = 0
    for nb in book:
        chapter = parsed(built / f"{nb.docname}.html").ids
        for claim in nb.claims:
            anchor = f"equation-{claim.label}" if claim.kind == "eq" else claim.label
            if claim.kind == "def":
                continue
            assert anchor in chapter, f"{claim.label} has no anchor in {nb.docname}.html"
            assert f"#{anchor}\"" in ledger, f"{claim.label} missing from the ledger"
            if claim.kind == "cor":
                n_corrections += 1
                assert f"#{anchor}\"" in errata, f"{claim.label} missing from the errata"
    assert n_corrections >= 1
    assert errata.count("see the correction") == n_corrections


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


def test_every_page_renders_offline_in_chromium(built: Path, server: str) -> None:
    if not Path(CHROMIUM).exists() or shutil.which("chromium") is None:
        pytest.fail("chromium is missing: run `apt-get install -y chromium` (as .ci/run does)")
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    typeset = 0
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-quic",
                "--no-first-run",
            ],
        )
        for page_path in pages(built):
            rel = page_path.relative_to(built).as_posix()
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
        browser.close()
    assert not problems, "\n".join(problems)
    assert typeset > 50, f"only {typeset} typeset formulas in the whole book"
