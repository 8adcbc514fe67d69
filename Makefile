# Two commands: `make run` serves Greenbar on an embedded SQLite database,
# `make test` runs the whole suite. Both set up everything they need first.

VENV := .venv
BIN := $(VENV)/bin
PYTHON ?= python3
FLASK := $(BIN)/flask --app wsgi
APT_PACKAGES := nginx chromium
# where `make run` serves (the docs test serves it on a free port)
RUN_BIND ?= 127.0.0.1:5000

.PHONY: run test lint system-deps clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# --no-compile: Python compiles what is imported when it is first imported; compiling every file
# at install (ansible's collections are 20,000 of them) costs CI about 40 s of CPU for nothing
$(VENV)/.runtime-installed: requirements.txt | $(BIN)/activate
	$(BIN)/pip install --quiet --no-compile -r requirements.txt
	touch $@

# the tests also drive the operator's tooling (ansible-lint, the moto provisioning cycle)
$(VENV)/.dev-installed: requirements.txt requirements-dev.txt ansible/requirements.txt | $(BIN)/activate
	$(BIN)/pip install --quiet --no-compile -r requirements-dev.txt -r ansible/requirements.txt
	touch $@ $(VENV)/.runtime-installed

## run: set up the venv, migrate the SQLite database, bootstrap it once, serve on :5000
# with the background worker (mail, webhooks, queued imports) beside gunicorn, stopped with it;
# gunicorn's two workers and the worker add up their /metrics figures in instance/metrics
run: $(VENV)/.runtime-installed
	$(FLASK) db upgrade
	$(FLASK) bootstrap
	rm -rf instance/metrics && mkdir -p instance/metrics
	export GREENBAR_EXTERNAL_URL=$${GREENBAR_EXTERNAL_URL:-http://$(RUN_BIND)}; \
	export PROMETHEUS_MULTIPROC_DIR=$(CURDIR)/instance/metrics; \
	$(FLASK) worker & trap 'kill $$! 2>/dev/null' EXIT; \
	$(BIN)/gunicorn --bind $(RUN_BIND) --workers 2 --threads 4 --worker-class gthread \
	  --no-control-socket wsgi:app

## system-deps: Debian packages the tests drive for real (nginx, chromium)
system-deps:
	@missing=""; for pkg in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$pkg 2>/dev/null | grep -q "ok installed" || missing="$$missing $$pkg"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

## test: set up everything, lint, run the whole suite on both cores
# (--dist loadfile keeps each file on one worker, so a module's server starts once; the files go
# out in the order tests/conftest.py gives them, the longest first. A third worker was slower:
# the suite keeps both cores busy, and a browser test timed out under the extra contention)
test: system-deps $(VENV)/.dev-installed lint
	$(BIN)/pytest -n 2 --dist loadfile --no-loadscope-reorder

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
