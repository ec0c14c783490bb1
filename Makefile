# Nimbus: `make run` serves the console on :8080, `make test` runs the suite. Both bootstrap .venv first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint format bench screenshots lock clean

$(STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/nimbus serve

test: $(STAMP)
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP)
	$(BIN)/python bench/invoke.py

# PNGs of the main pages for the README (needs chromium and chromium-driver).
screenshots: $(STAMP)
	$(BIN)/python -m tests.browser.screenshots

# Re-resolve the lock from pyproject's ranges (needs network).
lock:
	rm -rf /tmp/nimbus-lock && $(PYTHON) -m venv /tmp/nimbus-lock
	/tmp/nimbus-lock/bin/pip install --quiet -e '.[dev]'
	{ echo "# Pinned dependencies of Nimbus (the lock). Regenerate: make lock"; \
	  /tmp/nimbus-lock/bin/pip freeze --exclude-editable | sort -f; echo "setuptools==84.2.1"; } > requirements.lock

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
