# Quick start: `make bench` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
JOBS ?= 2

.PHONY: install test coverage bench atlas lint lock throughput readme reproductions clean

LOCK := constraints.txt

# Installs pinned by the committed lock (`make lock` refreshes it from a working .venv);
# `pip install -e .` without it gets the newest versions.
$(STAMP): pyproject.toml $(wildcard $(LOCK))
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c $(LOCK) -e '.[dev]'
	touch $(STAMP)

lock:
	test -x $(PY) || $(MAKE) install
	@echo "# Every package \`make bench\` / \`make test\` install, pinned (pip constraints)." > $(LOCK).new
	@echo "# Regenerate with \`make lock\` from a working .venv; the manifest records its sha256." >> $(LOCK).new
	$(PY) -m pip freeze --exclude-editable | grep -v '^-e ' >> $(LOCK).new
	mv $(LOCK).new $(LOCK)

install: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -n $(JOBS) --dist loadfile --no-loadscope-reorder -q

# `make test` under coverage (coverage.py): td_jax's line coverage over every test, with the xdist
# workers and the tests' CLI subprocesses (pyproject.toml [tool.coverage]). Writes .coverage
# and prints the report (its last line is the total), then exits with pytest's status, so
# a failing test still leaves the report.
COVERAGE := COVERAGE_FILE=$(CURDIR)/.coverage $(PY) -m coverage
coverage: $(STAMP)
	rm -f .coverage .coverage.*
	$(COVERAGE) run -m pytest -n $(JOBS) --dist loadfile --no-loadscope-reorder -q \
		-p no:cacheprovider; status=$$?; \
	$(COVERAGE) combine -q && $(COVERAGE) report --skip-covered --sort=cover; \
	exit $$status

# The default suite, then the README's generated blocks from the results it wrote (so
# that `make test` after `make bench` checks the README against them).
bench: $(STAMP)
	$(PY) -m td_jax bench --suite default --out results/default
	$(PY) -m td_jax.engine.scoring.readme .

# The CPU atlas (benchmarks/atlas.toml: about 30 minutes on 2 cores; resumable), then the
# device atlas's estimated time from it and results/throughput_gpu.json.
atlas: $(STAMP)
	$(PY) -m td_jax bench --suite atlas --out results/atlas
	$(PY) -m td_jax.studies.atlas_device estimate .
	$(PY) -m td_jax.engine.scoring.readme .

# The README's generated blocks (findings, atlas, control, Rowland), from the committed results.
readme: $(STAMP)
	$(PY) -m td_jax.engine.scoring.readme .

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
