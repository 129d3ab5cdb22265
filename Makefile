# dstrail: `make run` (demo on embedded SQLite) and `make test` (both databases).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# axe-core from npm for the console's browser tests (tests/web/axe.py injects it).
AXE := tests/web/axe/node_modules/axe-core/axe.min.js

.PHONY: setup run test lint typecheck layers bench bench-scale bench-console bench-forensics bench-findings bench-access bench-integrity bench-stream clean

$(STAMP): pyproject.toml constraints.txt
	@echo "setting up $(VENV): installing dstrail and its dependencies (about a minute, once)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

$(AXE): tests/web/axe/package.json
	npm install --prefix tests/web/axe --no-audit --no-fund --no-package-lock
	touch $(AXE)

setup: $(STAMP) $(AXE)

run: $(STAMP)
	$(BIN)/dstrail demo

test: $(STAMP) $(AXE)
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

bench-console: $(STAMP)
	$(BIN)/python bench/console_bench.py

bench-forensics: $(STAMP)
	$(BIN)/python bench/forensics_bench.py

bench-findings: $(STAMP)
	$(BIN)/python bench/forensics_eval.py

bench-access: $(STAMP)
	$(BIN)/python bench/access_bench.py

bench-integrity: $(STAMP)
	$(BIN)/python bench/integrity_bench.py

bench-stream: $(STAMP)
	$(BIN)/python bench/stream_bench.py

clean:
	rm -rf $(VENV) tests/web/axe/node_modules dstrail-data .pytest_cache .mypy_cache .ruff_cache
