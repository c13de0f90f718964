# Two commands for a newcomer: `make run` (a demo with its own Redis) and
# `make test`. Both build .venv first; nothing is installed outside it.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: run test test-browser screenshots chaos soak venv clean bench docs

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(PY) examples/demo.py

# Two pytest workers (pytest-xdist): most of a test is waiting on processes
# it started, so two at once on 2 cores keep the suite under 10 minutes.
# TEST_WORKERS=0 runs it in one process.
TEST_WORKERS ?= 2

test: $(STAMP)
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist worksteal

# The dashboard in a headless Chromium (not part of `make test`): needs Debian's
# chromium and chromium-driver, and fails saying so when they are missing.
test-browser: $(STAMP)
	RESQUED_BROWSER=1 $(PY) -m pytest -q tests/browser

# A PNG of each page of the dashboard, in docs/images/ (same needs).
screenshots: $(STAMP)
	$(PY) tests/browser/screenshots.py docs/images

# The settings tables of docs/configuration.md and docs/envmode.md, rendered
# from resqued/config/settings.py (tests/config/test_doc_tables.py checks them).
docs: $(STAMP)
	$(PY) -m resqued.config.describe docs/*.md

# The full chaos test (10,000 jobs; CHAOS_JOBS=N to change), then the
# scheduler SIGKILLed in a loop while 10,000 delayed jobs fall due; `make test`
# runs both with 1,000 jobs.
chaos: $(STAMP)
	$(PY) tests/chaos.py --jobs $${CHAOS_JOBS:-10000} --failover
	SCHEDULER_KILL_JOBS=10000 $(PY) -m pytest -q tests/scheduler/test_scheduler.py -k sigkilled_in_a_loop

# The soak (not part of `make test`): one master fed jobs through reloads,
# restarts, kills and a Redis restart; fails on a lost job or on drift in the
# master's RSS, fds, processes or Redis' keys. SOAK_SECONDS=N to change (600).
soak: $(STAMP)
	$(PY) tests/soak.py --seconds $${SOAK_SECONDS:-600}

# Benchmarks against RQ and Celery (not part of `make test`): a separate venv
# with the peers from PyPI; see BENCHMARKS.md. BENCH_ARGS='--quick' for a short run.
BENCH_VENV  := .venv-bench
BENCH_STAMP := $(BENCH_VENV)/.installed-stamp

$(BENCH_STAMP): pyproject.toml bench/requirements.txt
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(BENCH_VENV)/bin/python -m pip install --quiet -e . -r bench/requirements.txt
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BENCH_VENV)/bin/python bench/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) $(BENCH_VENV) var .pytest_cache build *.egg-info bench/results/logs
