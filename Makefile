# The two commands a newcomer needs:  make book   and   make test
# Both create .venv and install everything on first use (and again when requirements change).

SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(abspath $(VENV))/bin
STAMP := $(VENV)/.installed
# nbgrader runs `alembic` and `jupyter` by name: the venv must come first on PATH.
export PATH := $(BIN):$(PATH)
ASSIGNMENTS := $(notdir $(wildcard solutions/*))

.PHONY: help venv sysdeps book serve test lint assignments dist clean

help:
	@echo "make book         build the book into _build/html (executes chapters, cached)"
	@echo "make test         the whole suite: lint, library, book in a browser, assignments"
	@echo "make serve        serve the built book on http://localhost:8000"
	@echo "make lab          open the chapters live in JupyterLab (as notebooks)"
	@echo "make assignments  regenerate assignments/ (student release) from solutions/"
	@echo "make dist         build the course_lib wheel into dist/ (what students pip install)"
	@echo "make clean        remove _build (the execution cache too)"

$(STAMP): requirements.txt requirements-nodeps.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -r requirements-nodeps.txt
	touch $@

venv: $(STAMP)

sysdeps:
	bash scripts/install-system-deps.sh

# npm packages the browser tests load into the pages (axe-core), pinned by package-lock.json.
NODE_STAMP := node_modules/.installed
$(NODE_STAMP): package.json package-lock.json | sysdeps
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# Chapters are executed into the cache first, two at a time (the pages that time code alone),
# then Jupyter Book builds from the cache.
book: $(STAMP)
	$(BIN)/python scripts/execute_book.py
	$(BIN)/jupyter-book build . -W -n --keep-going

# JupyterLab (installed with nbgrader) with the project's settings
# (.jupyter/lab/user-settings): book/*.md open as notebooks, through jupytext.
lab: $(STAMP)
	JUPYTERLAB_SETTINGS_DIR=$(CURDIR)/.jupyter/lab/user-settings $(BIN)/jupyter lab book/

serve: book
	$(BIN)/python -m http.server --directory _build/html --bind 127.0.0.1 8000

lint: $(STAMP)
	$(BIN)/ruff check .

# --dist loadfile: a test file runs in one worker, so its module fixtures (a graded class)
# are built once; each assignment is graded in its own file (tests/test_grade_*.py), so the
# workers share the grading. --durations: the slowest tests, to watch the 30-minute budget. (loadgroup's xdist_group marks are ignored under pytest 9: xdist 3.8
# renames node ids through an attribute pytest 9 no longer reads.)
test: $(STAMP) sysdeps $(NODE_STAMP) lint book
	$(BIN)/python -m pytest -n 2 --dist loadfile --durations=25

assignments: $(STAMP)
	for a in $(ASSIGNMENTS); do $(BIN)/nbgrader generate_assignment "$$a" --force || exit 1; done

# The wheel students install (pip install dist/course_lib-*.whl): no dependencies bundled.
dist: $(STAMP)
	rm -rf dist build
	$(BIN)/python -m pip wheel --no-deps --no-build-isolation --wheel-dir dist .

clean:
	rm -rf _build
