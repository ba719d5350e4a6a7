# Two entry points: `make lab` (work through the course) and `make test` (check all of it).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
NBDIR  := build/notebooks
# Every chapter and every solution notebook runs under nbval.
NOTEBOOKS := $(wildcard chapters/*.py solutions/*.py)

.PHONY: lab test test-unit test-notebooks test-browser site notebooks bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install -e '.[test]'
	@# open .py chapters as notebooks on double-click (a setting local to this .venv)
	mkdir -p $(VENV)/share/jupyter/lab/settings
	$(BIN)/jupytext-config --settings-file $(VENV)/share/jupyter/lab/settings/overrides.json set-default-viewer python
	touch $(STAMP)

# JupyterLab refuses to run as root unless told to (containers often run as root).
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root)

lab: $(STAMP)
	$(BIN)/jupyter lab $(ROOT_FLAG) --ServerApp.root_dir="$(CURDIR)" --LabApp.default_url=/lab/tree/chapters

test: test-unit test-notebooks

# tests/browser needs Chromium and runs on its own: `make test-browser`
test-unit: $(STAMP)
	$(BIN)/python -m pytest tests --ignore=tests/browser

# Jupytext sources -> .ipynb in build/, then nbval runs every cell and fails on any error
# (every claim in a chapter is an assertion, so a wrong claim fails here).
notebooks: $(STAMP)
	rm -rf $(NBDIR)
	mkdir -p $(NBDIR)
	for f in $(NOTEBOOKS); do mkdir -p $(NBDIR)/$$(dirname $$f); \
	  $(BIN)/jupytext --quiet --to ipynb --output $(NBDIR)/$$(dirname $$f)/$$(basename $$f .py).ipynb $$f || exit 1; \
	done

# VIDLEARN_CHECK_STRICT: a reference solution that fails its own check() fails the run.
test-notebooks: notebooks
	VIDLEARN_CHECK_STRICT=1 $(BIN)/python -m pytest --nbval-lax --nbval-cell-timeout=300 -p no:cacheprovider $(NBDIR) --durations=5

BROWSER_STAMP := $(VENV)/.installed-browser
$(BROWSER_STAMP): $(STAMP) pyproject.toml
	$(BIN)/python -m pip install -e '.[test,browser]'
	touch $(BROWSER_STAMP)

# The course in a real JupyterLab driven through Debian's headless Chromium by Playwright
# (apt install chromium; no browser download). Screenshots in build/browser/screenshots/.
test-browser: $(BROWSER_STAMP)
	$(BIN)/python -m pytest tests/browser --durations=5

# The course as a static site (Sphinx + MyST-NB + sphinx-book-theme, configured in docs/conf.py):
# every chapter executed, exercises rendered unexecuted, search, maths served locally; built offline
# into a staging folder, checked (every chapter reachable with its figures, no dead local link,
# nothing loaded from outside), and only then moved to build/site. Sphinx comes from the site extra,
# which students never need: installed here on first use.
SITE_STAMP := $(VENV)/.installed-site
$(SITE_STAMP): $(STAMP) pyproject.toml
	$(BIN)/python -m pip install -e '.[test,site]'
	touch $(SITE_STAMP)

site: $(SITE_STAMP)
	$(BIN)/vidlearn build-site --out build/site --jobs 2

bench: $(STAMP)
	$(BIN)/python benchmarks/attention.py
	$(BIN)/python benchmarks/vivit.py

clean:
	rm -rf build .pytest_cache
