# The two commands a reader needs are `make book` and `make test` (see README.md).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
NOTEBOOKS := $(shell find book -name '*.ipynb' -not -path '*/_build/*' -not -path '*/.ipynb_checkpoints/*' | sort)
PORT   ?= 8000

.PHONY: venv book test execute serve clean

# Create the virtual environment and install the pinned toolchain plus rlnotes (editable).
$(STAMP): constraints.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[test,bench]"
	@# Build matplotlib's font cache now: on a fresh machine its first import prints a notice to
	@# stderr, which would land in a notebook's output and fail nbval's comparison.
	$(BIN)/python -c "import matplotlib.pyplot"
	@touch $@

venv: $(STAMP)

# Build the HTML book from the committed (nbval-verified) notebook outputs; warnings are errors.
book: $(STAMP)
	$(BIN)/jupyter-book build . -W -n --keep-going
	@echo "Book: $(abspath _build/html/index.html)"

# The whole suite: lint, types, unit and property tests, nbval, book build and browser check.
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy rlnotes
	$(BIN)/pytest -n 2 --dist loadfile

# Re-execute every notebook in place, top to bottom in a fresh kernel, to refresh committed outputs.
execute: $(STAMP)
	$(BIN)/python tests/execute_notebooks.py $(NOTEBOOKS)

serve:
	@echo "Serving $(abspath _build/html) on http://127.0.0.1:$(PORT)/"
	$(BIN)/python -m http.server --directory _build/html --bind 127.0.0.1 $(PORT)

clean:
	rm -rf _build .pytest_cache .mypy_cache .ruff_cache .hypothesis
