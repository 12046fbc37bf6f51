# Soft Token IdP. `make help` lists the targets.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml requirements.lock | sha256sum | cut -c1-12)

.DEFAULT_GOAL := help
.PHONY: help install demo test coverage check lint typecheck serve bench translations chromium services lock clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'

# Every dependency comes from requirements.lock, pinned with its hashes: pip refuses a file
# whose hash is not there. The project itself is installed on top, without dependencies.
$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	rm -f $(VENV)/.installed-* && touch $(STAMP)

install: $(STAMP) ## create .venv and install the locked dependencies, the project and its test tools

lock: ## resolve requirements.lock again from pyproject.toml (pip-compile, with hashes)
	$(PYTHON) -m venv build/lock-venv
	build/lock-venv/bin/python -m pip install --quiet pip-tools
	build/lock-venv/bin/pip-compile --quiet --generate-hashes --allow-unsafe --extra test \
	  --strip-extras --no-emit-find-links --no-emit-index-url -o requirements.lock pyproject.toml

demo: install ## run everything on the embedded default (SQLite, no Redis); Ctrl-C stops it
	$(BIN)/idp demo up

chromium: ## install Debian's chromium for the browser tests when missing (as root)
	@if ! command -v chromium >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	  else echo "chromium is missing and we are not root: browser tests will not run"; fi; \
	fi
	@# A Thai system font, so that screenshots of Thai pages show letters, not boxes.
	@if command -v fc-list >/dev/null 2>&1 && [ -z "$$(fc-list :lang=th)" ] && [ "$$(id -u)" = 0 ]; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-tlwg-loma-otf; \
	fi

services: ## install Debian's postgresql and redis-server for the tests when missing (as root)
	@# The tests start throwaway servers from these when none answers at the configured URLs
	@# (tests/services.py), and the fault suite always does.
	@missing=""; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || missing="postgresql"; \
	command -v redis-server >/dev/null 2>&1 || missing="$$missing redis-server"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  else echo "$$missing missing and we are not root: tests needing them run only against servers that answer"; fi; \
	fi

lint: install ## ruff (lint and format check)
	$(BIN)/ruff check idp mock_paotang mock_nexus gfms_portal thai_format tests bench
	$(BIN)/ruff format --check idp mock_paotang mock_nexus gfms_portal thai_format tests bench

typecheck: install ## mypy --strict on idp/ and the mocks
	$(BIN)/mypy

test: install chromium services lint typecheck ## install what tests need, then lint, type-check and run every test
	$(BIN)/pytest $(T)

coverage: install chromium services ## the tests with branch coverage, and its total (slower: docs/testing.md)
	$(BIN)/pytest --cov --cov-report=term $(T)

check: test ## everything CI runs

serve: install ## the IdP in production mode on 127.0.0.1:8000, and its waiter with IDP_WAIT_URL (needs IDP_DATABASE_URL, IDP_REDIS_URL, secrets)
	IDP_MODE=production $(BIN)/idp db upgrade
	IDP_MODE=production $(BIN)/idp serve

bench: install ## this IdP beside node-oidc-provider on one core, side by side (bench/README.md)
	$(BIN)/python bench/run.py $(BENCH_ARGS)

translations: install ## extract page texts, update the Thai catalogue, compile it
	$(BIN)/pybabel extract -F babel.cfg -k _ -k gettext -k _l -o instance/messages.pot .
	$(BIN)/pybabel update -i instance/messages.pot -d idp/web/translations --no-fuzzy-matching
	$(BIN)/pybabel compile -d idp/web/translations

clean: ## remove the virtualenv and the demo database
	rm -rf $(VENV) instance
