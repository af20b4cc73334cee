# Podium: `make up` runs it, `make test` passes the tests. Both set up .venv first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

BENCH  := $(VENV)/.bench-stamp

# Versions come from the lock files, never from the day's newest release (docs/operations.md, "Upgrading
# dependencies"): requirements/dev.lock is the runtime + dev set `make test` ran on; requirements/bench.lock adds
# the bench extra on top of exactly those pins. The uv that installs them is pinned too.
UV_VERSION := 0.13.9
DEV_LOCK   := requirements/dev.lock
BENCH_LOCK := requirements/bench.lock
COMPILE     = $(BIN)/uv pip compile pyproject.toml --universal --python-version 3.11 --custom-compile-command "make lock" \
              --quiet $(if $(UPGRADE),--upgrade)

# The long randomized run (`make fuzz`): a fresh seed each run unless given, printed so a failure replays with
# `make fuzz SEED=<n>` (drawn once per make, so the echo and the run agree); SCALE times each test's examples.
SEED  := $(shell od -An -N4 -tu4 /dev/urandom | tr -d ' ')
SCALE ?= 10

.PHONY: install browser up test test-unit test-integration lint clean bench bench-quick lock upgrade fuzz

# Debian's Chromium for the browser test (tests/integration/test_page.py): Playwright drives it and never
# downloads a browser of its own. PODIUM_CHROMIUM=/path/to/chromium uses another one.
export PODIUM_CHROMIUM ?= /usr/bin/chromium
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
APT  := $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get

# The project itself goes in editable and without dependencies: every dependency is the lock's. The lock pins
# setuptools too, so the build uses that one (no isolated build env resolved from the index).
# Bytecode is compiled at install (~15 s; uv does not by default): each Ray worker, Serve replica and CLI the suite
# starts (well over a hundred) imports ray, serve, fastapi and pydantic, and where PYTHONDONTWRITEBYTECODE is set
# (as on the 2-core test box) each compiled them from source again, ~1.5 s of CPU per process.
$(STAMP): $(DEV_LOCK) pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv pip sync --quiet --compile-bytecode --python $(BIN)/python $(DEV_LOCK)
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps --no-build-isolation -e .
	touch $(STAMP)

install: $(STAMP)

# Re-resolve after editing pyproject.toml's dependencies: pins that still fit are kept. `make upgrade` (= `make lock
# UPGRADE=1`) moves every pin to the newest allowed release; either way commit the locks on their own, suite run.
lock: $(STAMP)
	$(COMPILE) --extra dev -o $(DEV_LOCK)
	$(COMPILE) --extra dev --extra bench -c $(DEV_LOCK) -o $(BENCH_LOCK)

upgrade:
	$(MAKE) lock UPGRADE=1

$(PODIUM_CHROMIUM):
	$(APT) install -y -qq --no-install-recommends chromium >/dev/null || \
		($(APT) update -qq && $(APT) install -y -qq --no-install-recommends chromium >/dev/null)

browser: $(PODIUM_CHROMIUM)

$(BENCH): $(STAMP) $(BENCH_LOCK)
	$(BIN)/uv pip sync --quiet --python $(BIN)/python $(BENCH_LOCK)
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps --no-build-isolation -e .
	touch $(BENCH)

# The side-by-side benchmark (docs/benchmarks.md): full run < 15 min, quick ~1 min of measuring.
bench: $(BENCH)
	$(BIN)/python -m load.bench

bench-quick: $(BENCH)
	$(BIN)/python -m load.bench --quick

up: install
	$(BIN)/podium up $(if $(PORT),--port $(PORT))

# The layers are contracts ([tool.importlinter] in pyproject.toml); mypy checks what [tool.mypy] names, whole.
lint: install
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/mypy

test-unit: install
	$(BIN)/pytest -q tests/unit

test-integration: install browser
	$(BIN)/pytest -q tests/integration

test: lint browser
	$(BIN)/pytest -q tests/unit tests/integration

# Not part of `make test`, which runs every property and fuzz test derandomized (tests/randomness.py).
fuzz: install
	@echo "make fuzz: seed $(SEED), $(SCALE)x the examples (replay: make fuzz SEED=$(SEED) SCALE=$(SCALE))"
	PODIUM_HYPOTHESIS_PROFILE=fuzz PODIUM_FUZZ_SEED=$(SEED) PODIUM_FUZZ_SCALE=$(SCALE) \
		$(BIN)/pytest -q tests/unit tests/integration/test_fuzz.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
