# cola-repro-kit — `make help` lists every target.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON   ?= python3
VENV     ?= .venv
PY       := $(VENV)/bin/python
PROFILE  ?= smoke
OUTPUT   ?= runs/$(PROFILE)-cpu
ARGS     ?=

# The venv is rebuilt whenever the pinned CPU stack changes.
$(VENV)/.stamp: requirements/cpu.txt pyproject.toml
	@echo "building $(VENV) from requirements/cpu.txt: ~2 GB (torch, transformers, ...), a few minutes the first time"
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements/cpu.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $@

# Developing the kit (dev/: mutation testing, stand-in bases, the GPU device check) is not needed to
# build, run, verify or compare: `make help` lists those targets apart, under "development".
DEV_MK   := $(wildcard dev/mk/*.mk)
LIST_TARGETS = grep -hE '^[a-zA-Z0-9_-]+:.*\#\# ' $(1) | sort | \
	  awk 'BEGIN {FS = ":.*\#\# "}; {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}'

.PHONY: help venv run-cpu test test-quick lint clean
help: ## list the targets
	@$(call LIST_TARGETS,$(filter-out $(DEV_MK),$(MAKEFILE_LIST)))
	@echo "development (dev/README.md: not needed to build, run, verify or compare):"
	@$(call LIST_TARGETS,$(DEV_MK))

venv: $(VENV)/.stamp ## create the CPU virtual environment (.venv) from requirements/cpu.txt

run-cpu: $(VENV)/.stamp ## train PROFILE (default smoke) on the CPU into OUTPUT (default runs/smoke-cpu)
	$(PY) -m recipe.finetune --profile $(PROFILE) --device cpu --output $(OUTPUT) $(ARGS)

test: $(VENV)/.stamp ## run the kit's whole test suite (tests/) on the CPU: what CI runs (15-25 min on 2 cores)
	$(PY) -m pytest -q tests

test-quick: $(VENV)/.stamp ## the quick tier, for every edit (~2 min on 2 cores): every test not marked slow; nothing trains
	$(PY) -m pytest -q -m "not slow" tests

clean: ## delete the venv and caches (.venv, __pycache__, .pytest_cache, .tox, reports/); runs/ is kept
	rm -rf $(VENV) .pytest_cache .tox reports cola_repro_kit.egg-info
	find recipe verify report bench tests docker dev -name __pycache__ -type d -prune -exec rm -rf {} +

lint: $(VENV)/.stamp ## ruff on the Python code
	$(VENV)/bin/ruff check recipe verify report bench tests dev

-include mk/*.mk $(DEV_MK)
