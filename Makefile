# exchange-tracker — the two commands: `make run` and `make test`. Everything installs from here.
SHELL := /bin/bash
# uv on PATH, else the one pip installs (`python3 -m uv` finds it in site-packages or the user site).
UV ?= $(shell command -v uv 2>/dev/null || echo "python3 -m uv")
PYTEST_ARGS ?=

.PHONY: help uv setup infra kafka postgres run stop test test-fast lint deploy-check docs format bench bench-load asyncapi clean

help:
	@echo "make run    set up everything, start Kafka and the four services with a demo dataset"
	@echo "make test   set up what tests need (Kafka, PostgreSQL, Chromium) and run every test"
	@echo "make stop | lint | deploy-check | docs | format | bench | bench-load | asyncapi | clean"

uv:
	@command -v python3 >/dev/null || { echo "python3 (3.11+) is required"; exit 1; }
	@$(UV) --version >/dev/null 2>&1 || python3 -m pip install --quiet uv || python3 -m pip install --quiet --user uv \
	  || python3 -m pip install --quiet --user --break-system-packages uv

setup: uv
	$(UV) sync --frozen
	@if [ -x deploy/local/reporting-assets.sh ]; then deploy/local/reporting-assets.sh; fi

kafka:
	deploy/local/kafka.sh start

postgres:
	deploy/local/postgres.sh start

infra: kafka postgres

run: setup kafka
	@if [ "$$EXCHANGE_DB" = postgres ]; then deploy/local/postgres.sh start; fi
	$(UV) run python deploy/local/run.py

stop:
	-$(UV) run python deploy/local/run.py stop
	deploy/local/kafka.sh stop

test: setup infra
	@if [ -x deploy/local/chromium.sh ]; then deploy/local/chromium.sh; fi
	$(UV) run pytest $(PYTEST_ARGS); status=$$?; \
	  if [ $$status -eq 5 ]; then echo "pytest ran no test: that is a failure"; exit 1; fi; exit $$status

lint: setup
	$(UV) run ruff check .
	$(UV) run ruff format --check .
	$(UV) run mypy libs/common/src services/*/src
	$(UV) run lint-imports
	deploy/check.sh

# Dockerfile, the image's install steps, docker-compose.yml and deploy/k8s, all validated offline.
deploy-check: setup
	deploy/check.sh

# docs/operations.md's configuration reference, from the settings classes.
docs: setup
	$(UV) run python deploy/settings_reference.py --write

# Each producer's published AsyncAPI document, regenerated from its code (its unit tests fail when stale).
asyncapi: setup
	for service in events partners talent; do $(UV) run $$service asyncapi > services/$$service/asyncapi.json; done

format:
	$(UV) run ruff format .
	$(UV) run ruff check --fix .

bench: setup infra
	$(UV) run python bench/run.py

# The whole system under 50 concurrent clients for 5 minutes (docs/reliability.md, "Load").
bench-load: setup kafka
	$(UV) run python bench/system/load.py --duration 300

clean:
	rm -rf .local/*.db .local/logs .pytest_cache .mypy_cache .ruff_cache
