# Two commands on a fresh machine: `make run` (the lifecycle end to end on the embedded engine) and `make test`.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
SCALE  ?= 1
SEED   ?= 7
DEMO   ?= demo
LAKE   ?= lake

.PHONY: run test fuzz install lock demo bench clean browser

# Install from the lock file into a local virtualenv (again whenever the lock or pyproject changes).
$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==0.13.8
	# --compile-bytecode: every process (each Airflow task, each test subprocess) would otherwise compile pandas,
	# pyspark, SQLAlchemy and Great Expectations from source when PYTHONDONTWRITEBYTECODE is set (≈18 s each, measured).
	$(BIN)/python -m uv pip sync --python $(BIN)/python --quiet --compile-bytecode requirements.lock
	$(BIN)/python -m uv pip install --python $(BIN)/python --quiet --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

# Generate the demo agencies, run the lifecycle DAG through Airflow, print the summary.
run: $(STAMP)
	$(BIN)/lawlake demo-data --out $(DEMO) --scale $(SCALE) --seed $(SEED)
	$(BIN)/lawlake run --sources $(DEMO) --lake $(LAKE)

# The headless browser the Data Docs test opens the site with (Debian's Chromium; skipped by no test).
browser:
	command -v chromium >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium)

# Lint (ruff, with import sorting), type-check (mypy on lawlake/, jobs/, quality/), then every test.
test: $(STAMP) browser
	$(BIN)/ruff check lawlake jobs quality dags tests bench
	$(BIN)/mypy
	$(BIN)/python -m pytest -q

# The long randomized gather fuzz run (seeds from the clock, printed; repeat one with LAWLAKE_FUZZ_SEED=…, size with LAWLAKE_FUZZ_RUNS=…).
# Also the Hypothesis rule properties with random exploration (the `dev` profile; `make test` runs them derandomized).
fuzz: $(STAMP)
	$(BIN)/python -m pytest -q -s -m fuzz tests/fuzz
	HYPOTHESIS_PROFILE=dev $(BIN)/python -m pytest -q tests/rules

# Re-pin every dependency (needs the network to PyPI); commit requirements.lock afterwards.
lock: $(STAMP)
	$(BIN)/python -m uv pip compile pyproject.toml --extra dev --python-version 3.11 -o requirements.lock

clean:
	rm -rf $(DEMO) $(LAKE)
