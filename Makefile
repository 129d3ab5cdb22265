# dstrail: `make run` (demo on embedded SQLite) and `make test` (both databases).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck layers bench bench-scale bench-access bench-integrity bench-stream clean

$(STAMP): pyproject.toml constraints.txt
	@echo "setting up $(VENV): installing dstrail and its dependencies (about a minute, once)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/dstrail demo

test: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

layers: $(STAMP)
	$(BIN)/lint-imports --no-cache

bench: $(STAMP)
	$(BIN)/python bench/audit_bench.py

bench-scale: $(STAMP)
	$(BIN)/python bench/audit_bench.py --scale

bench-access: $(STAMP)
	$(BIN)/python bench/access_bench.py

bench-integrity: $(STAMP)
	$(BIN)/python bench/integrity_bench.py

bench-stream: $(STAMP)
	$(BIN)/python bench/stream_bench.py

clean:
	rm -rf $(VENV) dstrail-data .pytest_cache .mypy_cache .ruff_cache
