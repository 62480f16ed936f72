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

# Debian's chromium (CHROMIUM_PATH, default /usr/bin/chromium) and the PDF fonts, from
# Debian's packages when missing and we may install them; never a downloaded browser.
DEBIAN_PACKAGES := chromium poppler-utils fonts-noto-cjk fonts-dejavu-core
browser: $(VENV)/.installed
	@if [ -x "$${CHROMIUM_PATH:-/usr/bin/chromium}" ]; then :; \
	elif command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(DEBIAN_PACKAGES) >/dev/null; \
	elif command -v apt-get >/dev/null && sudo -n true 2>/dev/null; then \
	  sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(DEBIAN_PACKAGES) >/dev/null; \
	else echo "warning: no Chromium at $${CHROMIUM_PATH:-/usr/bin/chromium}: install Debian's (apt-get install $(DEBIAN_PACKAGES)) or set CHROMIUM_PATH; browser tests and Retail Link login will not work"; fi
