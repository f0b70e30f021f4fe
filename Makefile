# Two commands set everything up on a fresh Linux machine with Python 3.10-3.12:
#   make demo   encode and decode the bundled sample clip, compare with x264/x265
#   make test   lint, format check and the whole test suite
# Both create .venv in the repository if it is missing and install the project into it.

VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test lint format clean-venv

$(STAMP): setup.cfg pyproject.toml
	@bash tools/make_venv.sh "$(VENV)"
	@touch $(STAMP)

demo: $(STAMP)
	$(PY) tools/demo.py

test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m pytest -q

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean-venv:
	rm -rf $(VENV)
