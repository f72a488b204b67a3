# Two commands on a fresh machine with Python 3.11+: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run test lint bench clean prometheus

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

bench: $(STAMP)
	$(PY) bench/sim.py
	SDL_VIDEODRIVER=dummy $(PY) bench/render.py

clean:
	rm -rf $(VENV) build *.egg-info
