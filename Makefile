# Every target bootstraps .venv idempotently: a fresh machine needs only `make demo` or `make test`.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test lint bench screenshots kubectl clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	@touch $(STAMP)

# kubectl is part of the test bench: install Debian's package where it is missing.
kubectl:
	@command -v kubectl >/dev/null 2>&1 || { \
	  echo "kubectl not found: installing Debian package kubectl"; \
	  (apt-get update -qq && (apt-get install -y -qq kubectl || apt-get install -y -qq kubernetes-client)) \
	  || echo "WARNING: could not install kubectl; kubectl tests will be skipped"; }

demo: $(STAMP) kubectl
	$(VENV)/bin/driftdeck demo

test: $(STAMP) kubectl
	$(PY) -m pytest -q -p no:cacheprovider -n 2

lint: $(STAMP)
	$(VENV)/bin/ruff check core sandbox driftdeck tui themes screenshots tests bench
	$(VENV)/bin/mypy

bench: $(STAMP)
	$(PY) bench/sandbox_bench.py
	$(PY) bench/render_bench.py
	$(PY) bench/source_bench.py
	$(PY) bench/drift_bench.py
	$(PY) bench/scheduler_bench.py
	@test ! -f bench/engine_bench.py || $(PY) bench/engine_bench.py
	@test ! -f bench/tui_bench.py || $(PY) bench/tui_bench.py
	@test ! -f bench/daemon_bench.py || $(PY) bench/daemon_bench.py --quick

screenshots: $(STAMP)
	$(PY) screenshots/make_screenshots.py

clean:
	rm -rf $(VENV)
