# The two commands a reader needs are `make book` and `make test` (see README.md).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt
# Readers get the book toolchain only; `make test` adds the test tools and the benchmark peers.
BOOK_STAMP := $(VENV)/.book-stamp
PDF_STAMP  := $(VENV)/.pdf-stamp
TEST_STAMP := $(VENV)/.test-stamp
CHAPTERS := $(sort $(wildcard book/[0-9][0-9]-*.ipynb))
PERF     := book/appendices/performance.ipynb
PDF      := _build/pdf/rlnotes-book.pdf
PORT   ?= 8000

.PHONY: venv book check test execute perf pdf serve clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# The book toolchain and rlnotes (editable). The pin torch==2.13.0 in constraints.txt makes pip
# take the CPU wheel, so a CPU-only machine never downloads a CUDA build.
$(BOOK_STAMP): constraints.txt pyproject.toml | $(BIN)/python
	$(PIP) -e ".[book]"
	@# Build matplotlib's font cache now: on a fresh machine its first import prints a notice to
	@# stderr, which would land in a notebook's output and fail nbval's comparison.
	$(BIN)/python -c "import matplotlib.pyplot"
	@touch $@

# The PDF printer: Playwright (driving Debian's chromium) and pypdf.
$(PDF_STAMP): $(BOOK_STAMP)
	$(PIP) -e ".[pdf]"
	@touch $@

# Everything `make test` runs: the book toolchain, the PDF printer, the test tools, the peers.
$(TEST_STAMP): $(PDF_STAMP)
	$(PIP) -e ".[test,bench]"
	@touch $@

venv: $(TEST_STAMP)

# Build the HTML book from the committed (nbval-verified) notebook outputs; warnings are errors.
book: $(BOOK_STAMP)
	$(BIN)/jupyter-book build . -W -n --keep-going
	@echo "Book: $(abspath _build/html/index.html)"

# The whole book as one PDF, printed offline by Chromium from the HTML (needs `make book` first
# and Debian's chromium); also copied next to the HTML, where the landing page links it.
pdf: $(PDF_STAMP)
	@test -f _build/html/book/intro.html || $(MAKE) book
	$(BIN)/python book/_ext/print_pdf.py _build/html $(PDF)
	cp $(PDF) _build/html/rlnotes-book.pdf
	@echo "PDF: $(abspath $(PDF))"

# What mypy (strict) checks: the package, its tests, the benchmarks and the book extension.
MYPY_PATHS := rlnotes tests benchmarks book/_ext

# The quick loop while editing (about 1.5 minutes): lint, format, types, the unit and property
# tests and the contract checks; no notebook execution, no book build, no browser.
check: $(TEST_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check rlnotes tests benchmarks book/_ext
	$(BIN)/mypy $(MYPY_PATHS)
	$(BIN)/pytest -n 2 --dist loadfile -o addopts="-p no:cacheprovider" tests \
	  --ignore=tests/test_book.py --ignore=tests/test_standalone.py

# The whole suite: lint, types, unit and property tests, nbval, book build, browser and PDF.
test: $(TEST_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check rlnotes tests benchmarks book/_ext
	$(BIN)/mypy $(MYPY_PATHS)
	$(BIN)/pytest -n 2 --dist loadfile

# Re-execute every chapter in place, top to bottom in a fresh kernel, to refresh the committed
# outputs (an unchanged chapter stays byte-identical).
execute: $(BOOK_STAMP)
	$(BIN)/python tests/execute_notebooks.py $(CHAPTERS)

# The performance appendix times rlnotes against its peers, so it has its own target.
perf: $(TEST_STAMP)
	$(BIN)/python tests/execute_notebooks.py $(PERF)

serve:
	@echo "Serving $(abspath _build/html) on http://127.0.0.1:$(PORT)/"
	$(BIN)/python -m http.server --directory _build/html --bind 127.0.0.1 $(PORT)

clean:
	rm -rf _build .pytest_cache .mypy_cache .ruff_cache .hypothesis
