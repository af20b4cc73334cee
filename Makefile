# Podium: `make up` runs it, `make test` passes the tests. Both set up .venv first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

BENCH  := $(VENV)/.bench-stamp

.PHONY: install browser up test test-unit test-integration lint clean bench bench-quick

# Debian's Chromium for the browser test (tests/integration/test_page.py): Playwright drives it and never
# downloads a browser of its own. PODIUM_CHROMIUM=/path/to/chromium uses another one.
export PODIUM_CHROMIUM ?= /usr/bin/chromium
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
APT  := $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip uv
	$(BIN)/uv pip install --quiet --python $(BIN)/python -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

$(PODIUM_CHROMIUM):
	$(APT) install -y -qq --no-install-recommends chromium >/dev/null || \
		($(APT) update -qq && $(APT) install -y -qq --no-install-recommends chromium >/dev/null)

browser: $(PODIUM_CHROMIUM)

$(BENCH): $(STAMP)
	$(BIN)/uv pip install --quiet --python $(BIN)/python -e '.[dev,bench]'
	touch $(BENCH)

# The side-by-side benchmark (docs/benchmarks.md): full run < 15 min, quick ~1 min of measuring.
bench: $(BENCH)
	$(BIN)/python -m load.bench

bench-quick: $(BENCH)
	$(BIN)/python -m load.bench --quick

up: install
	$(BIN)/podium up $(if $(PORT),--port $(PORT))

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy actors/ranking.py actors/cursors.py actors/routing.py actors/intake.py actors/player_state.py actors/standings.py \
		actors/catalog.py actors/messages.py actors/periods.py actors/history.py actors/journal_pipeline.py actors/delivery.py actors/recovery.py \
		actors/presence.py actors/tasks.py actors/friendship.py actors/social_events.py actors/social.py persistence/friends.py gateway/routes/friends.py actors/board_reads.py actors/score_counts.py actors/read_wire.py actors/channel.py gateway/frames.py gateway/batcher.py \
		gateway/read_batcher.py gateway/read_channel.py gateway/auth.py gateway/admission.py gateway/mailbox.py gateway/limits.py gateway/rate_limits.py gateway/routes/tokens.py gateway/board_watch.py gateway/routes/boards.py gateway/routes/page.py gateway/operations.py actors/metrics.py persistence/copy_text.py

test-unit: install
	$(BIN)/pytest -q tests/unit

test-integration: install browser
	$(BIN)/pytest -q tests/integration

test: lint browser
	$(BIN)/pytest -q tests/unit tests/integration

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
