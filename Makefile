# The README's two commands: `make run` and `make test`. Each sets up what it needs first.
PYTHON ?= python3
HOST ?= 127.0.0.1
PORT ?= 8080
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: run test lint format clean

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

# The gateway on ws://$(HOST):$(PORT)/v1/realtime. Clients that name no provider get the
# simulator here, so it works with no key and no network; export DEFAULT_PROVIDER=openai and
# OPENAI_API_KEY to relay to OpenAI instead.
run: $(INSTALLED)
	DEFAULT_PROVIDER=$${DEFAULT_PROVIDER:-simulator} $(BIN)/realtime-gateway serve --host $(HOST) --port $(PORT)

# Lint, then every test.
test: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest

format: $(INSTALLED)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
