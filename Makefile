# `make run` starts the bot, `make test` runs the checks; both create .venv/ on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: run test lint format bench bench-ack bench-screenshot bench-faults bench-bodies

run: $(INSTALLED)
	$(BIN)/python -m bot run

test: $(INSTALLED) lint
	$(BIN)/pytest

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(INSTALLED)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(INSTALLED)
	$(BIN)/python -m bench.incidents

bench-ack: $(INSTALLED)
	$(BIN)/python -m bench.slack_ack

bench-screenshot: $(INSTALLED)
	$(BIN)/python -m bench.screenshots

bench-faults: $(INSTALLED)
	$(BIN)/python -m bench.delivery_faults

bench-bodies: $(INSTALLED)
	$(BIN)/python -m bench.oversized_bodies

# Reinstalls whenever a requirements file changes.
$(INSTALLED): requirements.txt requirements-dev.txt
	@$(PYTHON) -c "import sys; sys.exit(0 if sys.version_info >= (3, 11) else \"Python 3.11 or newer is needed (PYTHON=$(PYTHON))\")"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@
