# Images: build, run, verify, shell and fetch on Ascend NPU and NVIDIA A100 hosts (docker/).
# Each target is one call of docker/run.sh: it validates the settings (make's command-line
# variables reach it through the environment), builds the docker command as a bash array and,
# with DRY_RUN=1, prints it instead of running it. The host needs bash, make and docker only:
# versions come from docker/versions.sh, generated from docker/versions.toml by `make lock`.
#   make run-npu DEVICES=0,1 PROFILE=published RUN_NAME=npu-published
#   make run-npu NPROC=8 BIND_CORES=1        make build-npu REGISTRY=quay.io
# Settings and defaults: the header of docker/run.sh, docs/ascend.md and docs/nvidia.md.
RUN_SH := docker/run.sh

.PHONY: build-npu build-a100 run-npu run-a100 verify-npu verify-a100 shell-npu shell-a100 fetch
build-npu: ## build the NPU image (CANN + torch_npu + openMind) from docker/versions.toml; REGISTRY=docker.io|quay.io|swr picks the base mirror
	@$(RUN_SH) build-npu

build-a100: ## build the CUDA 12.1 image (torch CUDA build, same libraries); REGISTRY=docker.io|nvcr.io picks the base mirror
	@$(RUN_SH) build-a100

run-npu: ## train PROFILE on Ascend cards DEVICES (default 0; all; NPROC=8: cards 0-7 via torchrun; NNODES, NODE_RANK, MASTER_ADDR for multi-node; BIND_CORES=1) into runs/RUN_NAME
	@$(RUN_SH) run-npu

run-a100: ## train PROFILE on NVIDIA GPUs DEVICES (default 0; all; NPROC=8: GPUs 0-7 via torchrun; NNODES, NODE_RANK, MASTER_ADDR for multi-node) into runs/RUN_NAME
	@$(RUN_SH) run-a100

verify-npu: ## run the verify suite in the NPU image: environment, then train PROFILE and assert thresholds
	@$(RUN_SH) verify-npu

verify-a100: ## run the verify suite in the CUDA image: environment, then train PROFILE and assert thresholds
	@$(RUN_SH) verify-a100

shell-npu: ## interactive shell in the NPU image, with the cards, driver, cache and runs mounted
	@$(RUN_SH) shell-npu

shell-a100: ## interactive shell in the CUDA image, with the GPUs, cache and runs mounted
	@$(RUN_SH) shell-a100

fetch: ## download bert-base-cased + GLUE CoLA once into KIT_CACHE, no card needed (FETCH_API=both|openmind|transformers, FETCH_ON=npu|a100)
	@$(RUN_SH) fetch

# These three use the CPU venv's Python: they maintain the table, they are not needed to build or run.
.PHONY: lock pin-digests test-pinned lint-docker
lock: $(VENV)/.stamp ## regenerate docker/locks/*.in and docker/versions.sh from docker/versions.toml and re-resolve the hash locks (uv, PyPI)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) docker/lock.py

pin-digests: $(VENV)/.stamp ## ask each registry for its base-image digest (docker buildx imagetools inspect) and write it into docker/versions.toml
	$(PY) docker/lock.py --pin-digests

lint-docker: $(VENV)/.stamp ## hadolint on both Dockerfiles, shellcheck on the scripts, ruff on docker/*.py
	$(VENV)/bin/hadolint docker/npu/Dockerfile docker/cuda/Dockerfile
	$(VENV)/bin/shellcheck -x docker/run.sh docker/entrypoint.sh
	$(VENV)/bin/ruff check docker

lint: lint-docker

# The images' Python layer on the host: Python 3.10 from pyenv, the CUDA lock, recipe + verify.
PYENV_ROOT_DIR = $(or $(shell pyenv root 2>/dev/null),$(HOME)/.pyenv)
PY310_BIN      = $(shell ls -d $(PYENV_ROOT_DIR)/versions/3.10.*/bin 2>/dev/null | sort -V | tail -n 1)

test-pinned: $(VENV)/.stamp ## tox -e pinned: the CUDA lock on Python 3.10 (pyenv), smoke runs on both APIs, verify's environment checks
	@test -n "$(PY310_BIN)" || { echo "test-pinned: no Python 3.10 under $(PYENV_ROOT_DIR)/versions/ (fix: pyenv install 3.10)" >&2; exit 2; }
	PATH="$(PY310_BIN):$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/tox -e pinned
