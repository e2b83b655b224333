# Two entry points: `make run` and `make test`. Both create .venv when missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint format diagrams bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/hip3 bot

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/hip3 diagrams --check
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

diagrams: $(STAMP)
	$(BIN)/hip3 diagrams

bench: $(STAMP)
	$(BIN)/python -m bench.signing
	$(BIN)/python -m bench.decode
	$(BIN)/python -m bench.sim
	$(BIN)/python -m bench.ingest
	$(BIN)/python -m bench.tick_to_post
	$(BIN)/python -m bench.hot_path
	$(BIN)/python -m bench.machines
	$(BIN)/python -m bench.backtest
	$(BIN)/python -m bench.backtest_core
	$(BIN)/python -m bench.liq_gate
	$(BIN)/python -m bench.tick
	$(BIN)/python -m bench.dashboard
	$(BIN)/python -m bench.html_report
	$(BIN)/python -m bench.soak --minutes 2
	$(BIN)/python -m bench.priority --seconds 60 --rounds 2
	$(BIN)/python -m bench.many_markets --soak-s 60

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis .ruff_cache
