# nnopt course kit: set-up, tests and course tooling.
#
#   make lab     create .venv with Python 3.11 if missing, install, start JupyterLab
#   make test    the same set-up plus the test extras, then the whole test suite
#   make help    all targets
#
# Set-up is incremental: .venv/.installed and .venv/.installed-test are stamp files,
# redone only when requirements*.txt or pyproject.toml change.

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip
RUNTIME_STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test
# Browser tests need Chromium, which `make test` never installs: they run in their
# own target (`make test-browser`, which installs Debian's chromium package first).
PYTEST_ARGS ?= -m "not browser" --timeout=900
LAB_ARGS ?=
LAB_EXTENSIONS := @jupyter/nbgrader @jupyter-widgets/jupyterlab-manager jupyter-matplotlib
BENCHMARKS := $(filter-out benchmarks/_%,$(sort $(wildcard benchmarks/*.py)))
PIPELINE := -m autograder.pipeline
SAMPLES ?= autograder/samples
GRADE_ARGS ?=
# Course scripts run with the kit's tools (python, jupyter, nbgrader) first on PATH.
WITH_VENV := PATH="$(abspath $(BIN)):$$PATH"

define PYTHON_HELP
Install Python 3.11, for example
  Debian/Ubuntu:  sudo apt install python3.11 python3.11-venv
  macOS:          brew install python@3.11
  any system:     pyenv install 3.11
then run make again (or name it: make lab PYTHON=/path/to/python3.11),
or use conda instead: conda env create -f environment.yml (see README.md).
endef
export PYTHON_HELP

.PHONY: help lab test bench release grade-demo strip clean distclean check-extensions

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 18

# --- set-up -------------------------------------------------------------------------

# Use $(PYTHON); if it is not installed at all, fall back to python3 when that is 3.11.
$(BIN)/python:
	@version() { command -v "$$1" >/dev/null 2>&1 && "$$1" --version 2>&1 || echo "not installed"; }; \
	py="$(PYTHON)"; command -v "$$py" >/dev/null 2>&1 || py=python3; \
	if ! "$$py" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then \
	  echo "error: Python 3.11 is needed to create $(VENV), but $(PYTHON) is" \
	       "$$(version "$(PYTHON)") and python3 is $$(version python3)." >&2; \
	  echo "$$PYTHON_HELP" >&2; exit 1; \
	fi; \
	echo "Creating $(VENV) with $$(command -v "$$py") ($$("$$py" --version))"; \
	"$$py" -m venv "$(VENV)" || { rm -rf "$(VENV)"; \
	  echo "error: could not create $(VENV); on Debian/Ubuntu: sudo apt install python3.11-venv" >&2; \
	  exit 1; }

$(RUNTIME_STAMP): requirements.txt pyproject.toml | $(BIN)/python
	@$(BIN)/python -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' || { \
	  echo "error: $(VENV) uses $$($(BIN)/python --version), the kit needs 3.11;" \
	       "delete it (make distclean) and run make again" >&2; exit 1; }
	$(PIP) install -r requirements.txt
	$(PIP) install --no-deps -e .
	$(PIP) check
	@touch $@

$(TEST_STAMP): requirements-test.txt $(RUNTIME_STAMP)
	$(PIP) install -r requirements-test.txt
	$(PIP) check
	@touch $@

check-extensions: $(RUNTIME_STAMP)  ## check the JupyterLab extensions (nbgrader, widgets, ipympl)
	@listing="$$($(BIN)/jupyter labextension list 2>&1 | sed 's/\x1b\[[0-9;]*m//g')"; \
	for ext in $(LAB_EXTENSIONS); do \
	  case "$$(grep -F " $$ext v" <<<"$$listing")" in \
	    *" enabled OK"*) echo "JupyterLab extension $$ext: enabled OK" ;; \
	    *" disabled "*) $(BIN)/jupyter labextension enable "$$ext" ;; \
	    *) echo "$$listing" >&2; \
	       echo "error: JupyterLab extension $$ext is missing or incompatible" \
	            "(see above); reinstall with: make distclean lab" >&2; exit 1 ;; \
	  esac; \
	done

# --- the two commands ---------------------------------------------------------------

lab: $(RUNTIME_STAMP) check-extensions  ## set up .venv and start JupyterLab here (LAB_ARGS=--no-browser ...)
	$(BIN)/jupyter lab $(LAB_ARGS)

test: $(TEST_STAMP)  ## set up .venv with test extras, run the test suite (PYTEST_ARGS=...)
	@status=0; $(BIN)/python -m pytest $(PYTEST_ARGS) || status=$$?; \
	if [ $$status -eq 5 ]; then \
	  echo "error: pytest collected no tests (exit code 5): check tests/ and PYTEST_ARGS" >&2; \
	  exit 1; \
	fi; \
	exit $$status

# --- course tooling -----------------------------------------------------------------

bench: $(TEST_STAMP)  ## run benchmarks/*.py; each writes its table to benchmarks/results/
	@if [ -z "$(BENCHMARKS)" ]; then echo "error: no benchmarks/*.py to run" >&2; exit 1; fi
	@mkdir -p benchmarks/results
	@for script in $(BENCHMARKS); do \
	  echo "== $$script"; $(BIN)/python "$$script" || exit 1; \
	done
	@echo "Tables are in benchmarks/results/"

release: $(RUNTIME_STAMP)  ## regenerate labs/ from solutions/ (nbgrader generate_assignment)
	$(WITH_VENV) $(BIN)/python $(PIPELINE) release

grade-demo: $(RUNTIME_STAMP)  ## autograde the sample submissions: scores, feedback, CSV
	$(WITH_VENV) $(BIN)/python $(PIPELINE) grade $(SAMPLES) $(GRADE_ARGS)

strip: $(RUNTIME_STAMP)  ## clear the outputs of lectures/*.ipynb (before committing)
	@if ! compgen -G "lectures/*.ipynb" >/dev/null; then echo "error: no lectures/*.ipynb" >&2; exit 1; fi
	$(BIN)/jupyter nbconvert --clear-output --inplace lectures/*.ipynb

clean:  ## remove caches and build leftovers (keeps .venv and autograder data)
	find . -path ./$(VENV) -prune -o \( -name __pycache__ -o -name .ipynb_checkpoints \) \
	  -type d -prune -exec rm -rf {} +
	rm -rf .pytest_cache build lib/*.egg-info

distclean: clean  ## also remove .venv (the next make lab/test rebuilds it)
	rm -rf $(VENV)

# --- browser tests (issue 8) ----------------------------------------------------------
# Real JupyterLab in Debian's Chromium, driven by Playwright (`playwright install` downloads
# a browser build and is never used). Installing chromium needs root and apt-get; without it
# the browser tests are skipped with the reason.
CHROMIUM := /usr/bin/chromium

.PHONY: chromium test-browser

chromium:  ## install Debian's chromium for the browser tests if it is missing (root, apt-get)
	@if [ -x $(CHROMIUM) ]; then echo "chromium: $$($(CHROMIUM) --version 2>/dev/null)"; \
	elif [ "$$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get update -q && apt-get install -y -q --no-install-recommends chromium \
	    || echo "warning: could not install chromium: the browser tests will be skipped" >&2; \
	else \
	  echo "warning: $(CHROMIUM) is missing; install it (sudo apt-get install chromium)," \
	       "or the browser tests are skipped" >&2; \
	fi

test-browser: $(TEST_STAMP) chromium  ## JupyterLab in Chromium: lecture 3 + its widget, Lab 1 + Validate
	$(BIN)/python -m pytest -m browser --timeout=1800

# --- the course as people run it: lecture site, JupyterHub demo (issue 17) ------------------
# Python tools of the course (JupyterHub, Sphinx + MyST-NB) are pinned in requirements-course.txt;
# node packages (configurable-http-proxy, MathJax) in autograder/deploy/hub/package-lock.json.
# Feedback pages are typeset with that MathJax, so `make test` and `make grade-demo` need it too.
COURSE_STAMP := $(VENV)/.installed-course
WEB := autograder/deploy/hub
WEB_STAMP := $(WEB)/node_modules/.installed
SITE_SRC := build/site-src
SITE_OUT := build/site
SITE_ARGS ?=
HUB_ARGS ?=

.PHONY: web-deps course-deps site hub-demo

$(COURSE_STAMP): requirements-course.txt $(RUNTIME_STAMP)
	$(PIP) install -r requirements-course.txt
	$(PIP) check
	@touch $@

course-deps: $(COURSE_STAMP)  ## install the course tools: JupyterHub, Sphinx + MyST-NB (requirements-course.txt)

# npm ci installs exactly package-lock.json. Node.js comes from apt-get when missing (root only).
$(WEB_STAMP): $(WEB)/package.json $(WEB)/package-lock.json
	@if ! command -v npm >/dev/null; then \
	  if [ "$$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then \
	    export DEBIAN_FRONTEND=noninteractive; \
	    apt-get update -q && apt-get install -y -q --no-install-recommends nodejs npm; \
	  fi; \
	  command -v npm >/dev/null || { echo "error: npm (Node.js >= 18) is needed for the hub's proxy" \
	    "and MathJax; install it (Debian: sudo apt-get install nodejs npm)" >&2; exit 1; }; \
	fi
	cd $(WEB) && npm ci --no-audit --no-fund
	@touch $@

web-deps: $(WEB_STAMP)  ## install the node packages: the hub's proxy, MathJax (npm ci in autograder/deploy/hub)

test grade-demo test-browser: $(WEB_STAMP)
test-browser: $(COURSE_STAMP)

site: $(COURSE_STAMP) $(WEB_STAMP)  ## lectures + labs as a static website in build/site (executed; offline math)
	@rm -rf $(SITE_SRC) && mkdir -p $(SITE_SRC)
	@cp -p lectures/_site/index.md $(SITE_SRC)/
	@cp -rp lectures labs $(SITE_SRC)/ && rm -rf $(SITE_SRC)/lectures/_site
	$(WITH_VENV) $(BIN)/sphinx-build -b html -c lectures/_site -W --keep-going $(SITE_ARGS) $(SITE_SRC) $(SITE_OUT)
	@echo "Open $(SITE_OUT)/index.html"

hub-demo: $(TEST_STAMP) $(COURSE_STAMP) $(WEB_STAMP) chromium  ## a class on JupyterHub in Chromium: release, fetch, submit, grade, feedback (root)
	@if [ "$$(id -u)" -ne 0 ]; then echo "error: make hub-demo creates Unix users: run it as root" >&2; exit 1; fi
	$(BIN)/python -m pytest tests/test_hub.py -m browser --timeout=1800 -p no:cacheprovider -rA $(HUB_ARGS)
