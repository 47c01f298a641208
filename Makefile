# The two commands a user needs: `make run` (the local Mini) and `make test` (the whole suite).
VENV ?= .venv
PY := $(VENV)/bin/python
ARGS ?=
PYTEST_ARGS ?=

.PHONY: run test provision lint

$(VENV)/.installed: pyproject.toml
	@echo "Installing snowplow-mini-k8s and its dependencies into $(VENV) (about 30 s the first time)..."
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

run: $(VENV)/.installed
	$(VENV)/bin/snowplow-mini local $(ARGS)

provision: $(VENV)/.installed
	$(PY) tests/components/provision.py

test: provision
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check pipeline operator tests
