# Two commands on a fresh machine with Python 3.11+: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run test lint bench clean prometheus mutants

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,ray]'
	touch $(STAMP)

run: $(STAMP)
	$(PY) main.py $(ARGS)

test: $(STAMP) prometheus
	$(PY) -m pytest

# The live-twin tests scrape `main.py serve` with a real Prometheus (Debian package prometheus): installed
# here when missing and this is root with apt-get; otherwise those tests skip (CI sets
# TWIN_REQUIRE_PROMETHEUS=1, so there they fail instead).
prometheus:
	@command -v prometheus >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	  prometheus >/dev/null) || echo "note: prometheus is not installed; the live-twin tests will skip"; }

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

# Mutation testing (mutmut 3, configured in setup.cfg): mutates the simulation core and runs its fast tests
# against every mutant, in a scratch copy (build/mutation) so the tree is never touched; then prints the
# mutants that were not killed and the counts. Slow: about two hours on 2 cores; MUTMUT_ARGS="--max-children 1"
# leaves a core free.
MUTATION := build/mutation
mutants: $(STAMP)
	@$(PY) -m pip show mutmut >/dev/null 2>&1 || $(PY) -m pip install --quiet 'mutmut>=3.8,<4'
	rm -rf $(MUTATION) && mkdir -p $(MUTATION)
	cp -a twin tests scenarios setup.cfg pyproject.toml $(MUTATION)/
	cd $(MUTATION) && { $(abspath $(VENV))/bin/mutmut run $(MUTMUT_ARGS) >run.log 2>&1 || \
	  { tr '\r' '\n' <run.log | tail -n 40; exit 1; }; } && \
	  $(abspath $(VENV))/bin/mutmut results && tr '\r' '\n' <run.log | tail -n 3 && \
	  $(abspath $(VENV))/bin/mutmut export-cicd-stats >/dev/null && cat mutants/mutmut-cicd-stats.json

bench: $(STAMP)
	$(PY) bench/sim.py
	SDL_VIDEODRIVER=dummy $(PY) bench/render.py

clean:
	rm -rf $(VENV) build *.egg-info
