# The README's two commands: `make run` and `make test`. Each sets up what it needs first.
PYTHON ?= python3
HOST ?= 127.0.0.1
PORT ?= 8080
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

WORKER_PORT ?= 8787
NODE_INSTALLED := node_modules/.installed

.PHONY: run worker test deps-check worker-deps chromium redis format clean

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

# The Worker's local host: Node packages (pyodide, ws, wrangler) and the Worker's Python
# packages unpacked into python_modules/ (tests/worker_host/README.md).
$(NODE_INSTALLED): package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

worker-deps: $(INSTALLED) $(NODE_INSTALLED)
	$(BIN)/python tests/worker_host/vendor.py

# The Worker bundle (what wrangler deploys: build/worker/ and the static assets in build/assets/)
# under Pyodide on http://$(HOST):$(WORKER_PORT), with the same settings from the environment as
# `make run`.
worker: worker-deps
	$(BIN)/python worker/build_bundle.py
	DEFAULT_PROVIDER=$${DEFAULT_PROVIDER:-simulator} node tests/worker_host/host.mjs \
		--entry build/worker/entry.py --root build/worker --python-modules python_modules \
		--cache-dir node_modules/.cache/worker-host \
		--host $(HOST) --port $(WORKER_PORT) $$($(BIN)/python tests/worker_host/wrangler_options.py)

# Debian's Chromium, for the browser cells of the client matrix (tests/clients), when missing.
chromium:
	@if [ ! -x /usr/bin/chromium ]; then \
	  if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; \
	  else echo "chromium is missing (apt-get install chromium); the browser tests will skip"; fi; \
	fi

# Debian's Redis, for the fleet-wide limits' tests (tests/e2e/test_fleet.py starts its own
# redis-server on a free loopback port; nothing is left running), when missing.
redis:
	@if ! command -v redis-server >/dev/null; then \
	  if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q redis-server; \
	  else echo "redis-server is missing (apt-get install redis-server); the fleet tests will skip"; fi; \
	fi

# Lint, then every test, on both runtimes, with every real client of the matrix; then the relay's
# end-to-end tests again on clean installs at the oldest and the newest releases the declared
# dependency ranges admit (deps-check).
test: worker-deps chromium redis
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest
	$(BIN)/python tests/deps/check.py

# The tests marked `deps` against .venv-deps/{newest,lowest}: each a venv holding only
# `pip install '.[standalone]'` and the Worker's packages, rebuilt from scratch on every run, at the
# newest releases the ranges in pyproject.toml admit and at their lower bounds (docs/dependencies.md;
# about a minute more: both ends are built and tested side by side).
deps-check: worker-deps
	$(BIN)/python tests/deps/check.py

format: $(INSTALLED)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) .venv-deps .pytest_cache .ruff_cache

# The benchmark suite (not part of `make test`; 8-12 minutes, more the first time: it installs the
# peers into bench/.cache): the gateway, Portkey and LiteLLM, and the Worker on the local Pyodide host,
# against a client talking to the same upstream directly; writes bench/RESULTS.md and
# bench/latency.png (see bench/run.py).
.PHONY: bench
bench: $(INSTALLED)
	$(BIN)/python -c 'import matplotlib' 2>/dev/null || $(BIN)/python -m pip install -q matplotlib
	$(BIN)/python -m bench.run

# Soak (not part of `make test`, ~2 minutes): 10,000 session open/close cycles through the gateway;
# its descriptors, threads and RSS before and after go to bench/SOAK.md (see bench/soak.py).
.PHONY: soak
soak: $(INSTALLED)
	$(BIN)/python -m bench.soak
