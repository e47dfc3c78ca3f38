# S2S Arena developer entry points.
#
#   make venv    create .venv (Python >= 3.11) and install the project with its test extras
#   make demo    run the self-contained demo (embedded Postgres + Redis; Ctrl-C stops it)
#   make test    run the test suite (PYTEST_ARGS='-k foo -x' to pass arguments to pytest)
#   make clean   remove .venv
#
# The environment is passed through untouched, so ARENA_PORT=9000 make demo works.

SHELL := /bin/bash
.DEFAULT_GOAL := venv

VENV := .venv
VENV_PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Interpreters tried in order; the first that exists and is >= 3.11 is used.
PYTHON_CANDIDATES ?= python3.12 python3.11 python3 python3.13
PYTEST_ARGS ?=
DEMO_ARGS ?=

.PHONY: venv demo test clean

venv: $(STAMP)

# Create the virtual environment (only when it does not exist yet).
$(VENV_PY):
	@set -e; py=""; \
	for c in $(PYTHON_CANDIDATES); do \
	  if command -v "$$c" >/dev/null 2>&1 && \
	     "$$c" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' >/dev/null 2>&1; then \
	    py="$$c"; break; \
	  fi; \
	done; \
	if [ -z "$$py" ]; then \
	  echo "error: S2S Arena needs Python >= 3.11; none of [$(PYTHON_CANDIDATES)] on PATH qualifies." >&2; \
	  echo "       Install one (Debian/Ubuntu: apt-get install python3 python3-venv) and re-run make." >&2; \
	  exit 1; \
	fi; \
	echo "Creating $(VENV) with $$py ($$("$$py" -c 'import sys; print(sys.version.split()[0])'))"; \
	if ! "$$py" -m venv "$(VENV)"; then \
	  rm -rf "$(VENV)"; \
	  echo "error: '$$py -m venv' failed (Debian/Ubuntu: apt-get install python3-venv)." >&2; \
	  exit 1; \
	fi; \
	if ! "$(VENV_PY)" -m pip install --disable-pip-version-check --upgrade pip; then \
	  rm -rf "$(VENV)"; exit 1; \
	fi

# (Re)install the project whenever pyproject.toml is newer than the stamp.
$(STAMP): pyproject.toml | $(VENV_PY)
	$(VENV_PY) -m pip install --disable-pip-version-check -e '.[test]'
	@touch $@

demo: venv
	$(VENV)/bin/s2s-arena demo $(DEMO_ARGS)

test: venv
	bash scripts/test.sh $(PYTEST_ARGS)

clean:
	rm -rf $(VENV)
