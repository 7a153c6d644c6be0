# Sijil: set-up, tests, lint and demo. `make demo` and `make test` work on a fresh machine.

PYTHON      ?= python3
VENV        := .venv
PY          := $(VENV)/bin/python
PIP         := $(VENV)/bin/pip
STAMP       := $(VENV)/.stamp
PYTEST_ARGS ?=
SRC_DIRS    := domain projections consumers replay portal simulator
# Only folders that hold Python files yet (mypy refuses an empty one).
LINT_DIRS    = $(foreach d,$(SRC_DIRS),$(if $(wildcard $(d)/*.py $(d)/*/*.py),$(d)))

export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: all setup test lint demo clean

all: test

setup: $(STAMP)

# Re-install only when pyproject.toml changed since the last install.
$(STAMP): pyproject.toml
	@test -x $(PY) || { echo "creating $(VENV) with $(PYTHON)"; $(PYTHON) -m venv $(VENV); }
	$(PIP) install -e '.[dev]'
	@touch $(STAMP)

test: setup
	$(PY) -m pytest -q -p no:cacheprovider tests $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check $(LINT_DIRS)
	$(VENV)/bin/mypy $(LINT_DIRS)

demo: setup
	$(VENV)/bin/sijil demo

clean:
	rm -rf .sijil .pytest_cache .mypy_cache .ruff_cache
	find . -path ./$(VENV) -prune -o -type d -name __pycache__ -prune -exec rm -rf {} +
