# The commands a newcomer types. Each target creates .venv and installs on its own.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: run test demo lint bench test-fault clean help

help:
	@echo "make run | test | demo | lint | bench | test-fault | clean"

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/oms run

# The fault tests run in a session of their own: they kill processes and starve the machine on
# purpose, and nothing they leave behind may touch the other tests.
test: $(STAMP)
	$(BIN)/python -m pytest -q tests/unit tests/integration tests/e2e
	$(BIN)/python -m pytest -q tests/fault

demo: $(STAMP)
	$(BIN)/oms demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy --strict shared services/*/domain*

bench: $(STAMP)
	$(BIN)/oms bench

test-fault: $(STAMP)
	$(BIN)/python -m pytest -q tests/fault

clean:
	rm -rf $(VENV) .oms .pytest_cache .mypy_cache .ruff_cache
