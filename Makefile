# Two commands for a newcomer: `make run` (a demo with its own Redis) and
# `make test`. Both build .venv first; nothing is installed outside it.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: run test chaos venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(PY) examples/demo.py

test: $(STAMP)
	$(PY) -m pytest -q

# The full chaos test (10,000 jobs; CHAOS_JOBS=N to change); a 1,000-job run
# is part of `make test`.
chaos: $(STAMP)
	$(PY) tests/chaos.py --jobs $${CHAOS_JOBS:-10000}

clean:
	rm -rf $(VENV) var .pytest_cache build *.egg-info
