# Two commands do all the set-up (see README):
#   make run   — create .venv, install jaxseg, train the default config on synthetic phantoms
#   make test  — create .venv, install jaxseg with test extras, run the test suite
PY ?= python3
VENV ?= .venv
WORKDIR ?= runs/default
CONFIG ?= configs/default.py

$(VENV)/.installed: pyproject.toml
	$(PY) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[test]'
	touch $@

.PHONY: install run test
install: $(VENV)/.installed

run: install
	$(VENV)/bin/python -m jaxseg.main --config=$(CONFIG) --workdir=$(WORKDIR)

test: install
	$(VENV)/bin/python -m pytest -q
