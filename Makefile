# Quick start: `make bench` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
JOBS ?= 2

.PHONY: install test bench lint throughput readme reproductions clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -n $(JOBS) --dist loadfile -q

bench: $(STAMP)
	$(PY) -m td_jax bench --suite default --out results/default

# The README's findings and Rowland blocks, from the committed results.
readme: $(STAMP)
	$(PY) -m td_jax.harness.readme .

# The reproductions and the approx suite (each resumable; results/<suite>/).
reproductions: $(STAMP)
	$(PY) -m td_jax bench --suite rowland2023
	$(PY) -m td_jax bench --suite dabney2020
	$(PY) -m td_jax bench --suite lyle2019
	$(PY) -m td_jax bench --suite approx

throughput: $(STAMP)
	$(PY) -m td_jax throughput --out results

lint: $(STAMP)
	$(VENV)/bin/ruff check td_jax tests
	$(VENV)/bin/ruff format --check td_jax tests

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
