# Two commands: `make run` brings the portal up, `make test` runs every test.
# Both set up what they need on a fresh machine (virtualenv, requirements, .env).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: run test setup browser prod-check

run: setup browser
	$(PY) manage.py migrate --noinput
	$(PY) manage.py setup_demo
	$(VENV)/bin/honcho -f Procfile start

# TEST_VAR_DIR: where the test run keeps its files (CI runs two backends at once).
TEST_VAR_DIR ?= $(CURDIR)/var/test

test: setup browser
	PORTAL_VAR_DIR=$(TEST_VAR_DIR) $(PY) -m pytest $(PYTEST_ARGS)

# The production configuration (Procfile.production: gunicorn, Celery workers, one
# beat) after `check --deploy`, on PostgreSQL + Redis on loopback with DEBUG=0;
# checks it answers, then stops it. DATABASE_URL / CELERY_BROKER_URL / CACHE_URL
# choose the servers (defaults: 127.0.0.1, database portal_prod_check, Redis 14/15).
prod-check: setup
	$(PY) scripts/prod_check.py

setup: $(VENV)/.installed .env

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

.env:
	PYTHON=$(PY) scripts/ensure-env

# Debian's chromium when present (CHROMIUM_PATH); else Playwright's own build,
# downloaded into the user's cache (nothing system-wide).
browser: $(VENV)/.installed
	@if [ -x "$${CHROMIUM_PATH:-/usr/bin/chromium}" ]; then :; \
	else $(PY) -m playwright install chromium || echo "warning: no Chromium; browser tests and Retail Link login will not work"; fi
