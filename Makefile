# `make run` starts the bot, `make test` runs the checks; both create .venv/ on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: run test lint format bench bench-ack bench-api bench-screenshot bench-faults bench-bodies

run: $(INSTALLED)
	$(BIN)/python -m bot run

# Without Debian's Chromium and its driver the browser tests skip; say so after the run.
BROWSER_NOTE := test -x /usr/bin/chromium -a -x /usr/bin/chromedriver || echo "NOTE: the browser \
tests (tests/test_browser.py) were skipped: install Chromium with \
'sudo apt-get install chromium chromium-driver'"

test: $(INSTALLED) lint
	@echo $(BIN)/pytest; $(BIN)/pytest; status=$$?; $(BROWSER_NOTE); exit $$status

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(INSTALLED)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# COUNT=1000000 make bench, or make bench COUNT=1000000: the incidents to seed (100,000).
bench: $(INSTALLED)
	COUNT=$(COUNT) UPGRADE_FROM=$(UPGRADE_FROM) $(BIN)/python -m bench.incidents

bench-ack: $(INSTALLED)
	$(BIN)/python -m bench.slack_ack

bench-api: $(INSTALLED)
	$(BIN)/python -m bench.api_latency

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
