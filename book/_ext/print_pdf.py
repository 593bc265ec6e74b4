"""Print the built HTML book into one PDF, offline, with Debian's Chromium (``make pdf``).

Usage: ``python book/_ext/print_pdf.py _build/html _build/pdf/rlnotes-book.pdf``.

Each page of ``_toc.yml`` is served from 127.0.0.1, opened in headless Chromium, typeset by the
book's own MathJax, and printed with the print style of ``book/static/rlbook.css`` (no navigation,
code wrapped at the margin, boxes kept whole); the pages are then merged in reading order with
pypdf, with one bookmark per page. Nothing is fetched from the network.
"""

from __future__ import annotations

import functools
import http.server
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
FOOTER = (
    '<div style="font-size:8px; width:100%; padding:0 12mm; color:#555; display:flex;'
    ' justify-content:space-between"><span class="title"></span>'
    '<span><span class="pageNumber"></span> / <span class="totalPages"></span></span></div>'
)


def reading_order(root: Path) -> list[str]:
    """The documents of the book in reading order: the root page, then ``_toc.yml``'s parts."""
    import yaml

    toc = yaml.safe_load((root / "_toc.yml").read_text(encoding="utf-8"))
    docs = [str(toc["root"])]
    for part in toc.get("parts", []):
        docs += [str(c["file"]) for c in part["chapters"]]
    return [d.removesuffix(".ipynb").removesuffix(".md") for d in docs]


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@contextmanager
def serve(directory: Path) -> Iterator[str]:
    handler = functools.partial(_Quiet, directory=str(directory))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()


def print_book(html: Path, out: Path, root: Path) -> list[tuple[str, int]]:
    """Print every page of the book into ``out``; return ``(title, first page)`` per document."""
    from playwright.sync_api import sync_playwright
    from pypdf import PdfReader, PdfWriter

    docs = reading_order(root)
    missing = [d for d in docs if not (html / f"{d}.html").exists()]
    if missing:
        raise SystemExit(f"not built (run `make book` first): {missing}")
    out.parent.mkdir(parents=True, exist_ok=True)
    writer = PdfWriter()
    outline: list[tuple[str, int]] = []
    with tempfile.TemporaryDirectory() as tmp, serve(html) as base, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1000, "height": 1400})
        page.on("request", lambda r: _refuse_offsite(r.url, base))
        for i, doc in enumerate(docs):
            page.goto(f"{base}/{doc}.html", wait_until="load")
            if page.evaluate("typeof MathJax !== 'undefined' && !!MathJax.startup"):
                page.evaluate("MathJax.startup.promise")
            page.evaluate("document.fonts.ready.then(() => true)")
            title = (
                page.evaluate(
                    "(document.querySelector('article h1') || {}).textContent || document.title"
                )
                .replace("#", "")
                .strip()
            )
            part = Path(tmp) / f"{i:03d}.pdf"
            page.pdf(
                path=str(part),
                format="A4",
                print_background=True,
                margin={"top": "16mm", "bottom": "18mm", "left": "14mm", "right": "14mm"},
                display_header_footer=True,
                header_template="<div></div>",
                footer_template=FOOTER,
            )
            outline.append((title, len(writer.pages)))
            for pdf_page in PdfReader(part).pages:
                writer.add_page(pdf_page)
        browser.close()
    for title, start in outline:
        writer.add_outline_item(title=title, page_number=start)
    writer.add_metadata({"/Title": "Executable RL Derivations", "/Creator": "make pdf"})
    with out.open("wb") as f:
        writer.write(f)
    return outline


_OFFSITE: list[str] = []


def _refuse_offsite(url: str, base: str) -> None:
    if not url.startswith((base, "data:", "blob:", "about:")):
        _OFFSITE.append(url)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: print_pdf.py HTML_DIR OUT.pdf", file=sys.stderr)
        return 2
    html, out = Path(argv[0]), Path(argv[1])
    root = Path(__file__).resolve().parents[2]
    start = time.perf_counter()
    outline = print_book(html, out, root)
    if _OFFSITE:
        print(f"pages asked for the network: {_OFFSITE[:5]}", file=sys.stderr)
        return 1
    from pypdf import PdfReader

    n = len(PdfReader(out).pages)
    print(f"{out}: {n} pages, {len(outline)} documents, {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
