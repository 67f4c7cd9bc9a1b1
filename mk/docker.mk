# Images: build, run, verify and shell on Ascend NPU and NVIDIA A100 hosts (docker/).
# Every version comes from docker/versions.toml. DRY_RUN=1 prints the commands instead.
#   make run-npu DEVICES=0,1 PROFILE=published RUN_NAME=npu-published
DOCKER     ?= docker
# Cards: DEVICES=0,1,... picks them; NPROC alone means cards 0..NPROC-1; one process per card.
ifeq ($(origin DEVICES),undefined)
DEVICES := $(if $(NPROC),$(shell seq -s, 0 $$(( $(NPROC) - 1 ))),0)
endif
# Multi-node through torchrun's rendezvous: run the same command on every node, NODE_RANK differs.
NNODES      ?= 1
NODE_RANK   ?= 0
MASTER_ADDR ?= 127.0.0.1
MASTER_PORT ?= 29500
# HCCL's 120 s connect default is too short for 8 ranks loading bert-base at different speeds (EI0006)
HCCL_CONNECT_TIMEOUT ?= 1200
HCCL_EXEC_TIMEOUT    ?= 1800
SHM_SIZE   ?= 16g
KIT_CACHE  ?= $(CURDIR)/.cache/kit
RUNS_DIR   ?= $(CURDIR)/runs
FETCH_API  ?= both
FETCH_ON   ?= npu
ASCEND_RUNTIME ?=
VERIFY_ARGS    ?=
# The host's HwHiAiUser ids when they are not the driver's default 1000 (owner of /dev/davinci*).
HWHIAIUSER_UID ?=
HWHIAIUSER_GID ?=
NPU_USER_ARGS   = $(if $(HWHIAIUSER_UID),--build-arg HWHIAIUSER_UID=$(HWHIAIUSER_UID)) \
                  $(if $(HWHIAIUSER_GID),--build-arg HWHIAIUSER_GID=$(HWHIAIUSER_GID))

# The host only needs a Python that reads TOML to build or run: the CPU venv when it exists.
HOST_PY   = $(if $(wildcard $(PY)),$(PY),$(PYTHON))
VERSIONS  = $(HOST_PY) -m recipe.versions
IMAGE_NPU  ?= $(shell $(VERSIONS) image-tag npu)
IMAGE_A100 ?= $(shell $(VERSIONS) image-tag cuda)
REVISION   ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
# Extra `docker build` flags, after the table's (a later --build-arg wins), e.g. the stand-in bases
# of `make test-images`: BUILD_FLAGS="--network host --build-arg BASE_IMAGE=kit-standin/cann:..."
BUILD_FLAGS ?=

comma := ,
# One word per card: the device flags and torchrun's process count derive from it.
DEVICE_LIST  = $(subst $(comma), ,$(DEVICES))
DEVICE_COUNT = $(words $(DEVICE_LIST))
NPROC       ?= $(DEVICE_COUNT)
WORLD        = $(shell echo $$(( $(NPROC) * $(NNODES) )))
# A mismatch stops the run target that uses it (and nothing else) before docker starts.
check_nproc  = $(if $(and $(filter-out all,$(DEVICES)),$(filter-out $(DEVICE_COUNT),$(NPROC))),\
  $(error NPROC=$(NPROC) but DEVICES=$(DEVICES) lists $(DEVICE_COUNT) card(s); fix: give one of them, e.g. make $@ DEVICES=$(DEVICES)))

# SWANLAB_* and the hub switches pass through by NAME only: docker copies the value from this
# environment, so an API key is never written on a command line, in a log or in the image.
PASS_ENV    = $(sort SWANLAB_API_KEY SWANLAB_MODE HF_HUB_OFFLINE HF_ENDPOINT \
                $(filter SWANLAB_%,$(.VARIABLES)))
# Several nodes: the ranks reach each other over the host network; the interface choices pass by name.
MULTI_NODE_ENV = NCCL_SOCKET_IFNAME HCCL_SOCKET_IFNAME GLOO_SOCKET_IFNAME HCCL_IF_IP
COMMON_RUN  = --rm --shm-size $(SHM_SIZE) -v $(KIT_CACHE):/cache -v $(RUNS_DIR):/runs \
              $(foreach name,$(PASS_ENV),-e $(name)) \
              $(if $(filter-out 1,$(NNODES)),--network host $(foreach name,$(MULTI_NODE_ENV),-e $(name)))

# Ascend: the chosen davinci cards + the management devices, and the host driver pieces the
# container cannot carry (they must match the host's kernel module). ASCEND_RUNTIME=1 uses the
# Ascend Docker Runtime instead, which mounts all of that itself.
NPU_DEVICES = $(foreach card,$(DEVICE_LIST),--device /dev/davinci$(card)) \
              --device /dev/davinci_manager --device /dev/devmm_svm --device /dev/hisi_hdc
NPU_MOUNTS  = -v /usr/local/dcmi:/usr/local/dcmi:ro \
              -v /usr/local/bin/npu-smi:/usr/local/bin/npu-smi:ro \
              -v /usr/local/Ascend/driver/lib64/:/usr/local/Ascend/driver/lib64/:ro \
              -v /usr/local/Ascend/driver/version.info:/usr/local/Ascend/driver/version.info:ro \
              -v /etc/ascend_install.info:/etc/ascend_install.info:ro
NPU_ACCESS  = $(if $(ASCEND_RUNTIME),--runtime ascend -e ASCEND_VISIBLE_DEVICES=$(DEVICES),$(NPU_DEVICES) $(NPU_MOUNTS))
# NVIDIA: --gpus needs the inner quotes for a list ("device=0,1"), else docker splits at the comma.
GPU_ACCESS  = $(if $(filter all,$(DEVICES)),--gpus all,--gpus '"device=$(DEVICES)"')

DOCKER_NPU  = $(DOCKER) run $(COMMON_RUN) $(NPU_ACCESS) \
              -e HCCL_CONNECT_TIMEOUT=$(HCCL_CONNECT_TIMEOUT) -e HCCL_EXEC_TIMEOUT=$(HCCL_EXEC_TIMEOUT)
DOCKER_A100 = $(DOCKER) run $(COMMON_RUN) $(GPU_ACCESS)
# One process: plain python. Several (NPROC x NNODES > 1): torchrun, one process per card.
LAUNCH      = $(if $(filter-out 1,$(WORLD)),python -m torch.distributed.run --nnodes $(NNODES) \
              --node_rank $(NODE_RANK) --nproc_per_node $(NPROC) --master_addr $(MASTER_ADDR) \
              --master_port $(MASTER_PORT),python)
FINETUNE    = $(LAUNCH) -m recipe.finetune --profile $(PROFILE)
VERIFY      = python -m pytest /opt/kit/verify --profile $(PROFILE) $(VERIFY_ARGS)

# DRY_RUN=1: print each command exactly as it would run (single-quoted for the shell), run none.
DRY := $(filter 1 yes true,$(DRY_RUN))
run_or_show = $(if $(DRY),@printf '%s\n' '$(subst ','\'',$(strip $(1)))',$(strip $(1)))

# Image names and build args come from the table: stop with its message when it cannot be read.
table-readable:
	@$(VERSIONS) get python.version >/dev/null

.PHONY: table-readable build-npu build-a100 run-npu run-a100 verify-npu verify-a100 shell-npu shell-a100 fetch lock test-pinned lint-docker

build-npu: table-readable ## build the NPU image (CANN + torch_npu + openMind) from docker/versions.toml
	$(call run_or_show,$(DOCKER) build -f docker/npu/Dockerfile $(shell $(VERSIONS) build-args npu) --build-arg REVISION=$(REVISION) $(NPU_USER_ARGS) $(BUILD_FLAGS) -t $(IMAGE_NPU) .)

build-a100: table-readable ## build the CUDA 12.1 image (torch CUDA build, same libraries) from docker/versions.toml
	$(call run_or_show,$(DOCKER) build -f docker/cuda/Dockerfile $(shell $(VERSIONS) build-args cuda) --build-arg REVISION=$(REVISION) $(BUILD_FLAGS) -t $(IMAGE_A100) .)

run-npu: table-readable ## train PROFILE on Ascend cards DEVICES (default 0; NPROC=8: cards 0-7 via torchrun; NNODES, NODE_RANK, MASTER_ADDR for multi-node) into runs/RUN_NAME
	$(call run_or_show,mkdir -p $(KIT_CACHE) $(RUNS_DIR))
	$(check_nproc)
	$(call run_or_show,$(DOCKER_NPU) $(IMAGE_NPU) $(FINETUNE) --device npu --output /runs/$(or $(RUN_NAME),$(PROFILE)-npu) $(ARGS))

run-a100: table-readable ## train PROFILE on NVIDIA GPUs DEVICES (default 0; NPROC=8: GPUs 0-7 via torchrun; NNODES, NODE_RANK, MASTER_ADDR for multi-node) into runs/RUN_NAME
	$(call run_or_show,mkdir -p $(KIT_CACHE) $(RUNS_DIR))
	$(check_nproc)
	$(call run_or_show,$(DOCKER_A100) $(IMAGE_A100) $(FINETUNE) --device cuda --output /runs/$(or $(RUN_NAME),$(PROFILE)-a100) $(ARGS))

verify-npu: table-readable ## run the verify suite in the NPU image: environment, then train PROFILE and assert thresholds
	$(call run_or_show,mkdir -p $(KIT_CACHE) $(RUNS_DIR))
	$(call run_or_show,$(DOCKER_NPU) $(IMAGE_NPU) $(VERIFY) --require-device npu --run-dir /runs/$(or $(RUN_NAME),verify-$(PROFILE)-npu))

verify-a100: table-readable ## run the verify suite in the CUDA image: environment, then train PROFILE and assert thresholds
	$(call run_or_show,mkdir -p $(KIT_CACHE) $(RUNS_DIR))
	$(call run_or_show,$(DOCKER_A100) $(IMAGE_A100) $(VERIFY) --require-device cuda --run-dir /runs/$(or $(RUN_NAME),verify-$(PROFILE)-a100))

shell-npu: table-readable ## interactive shell in the NPU image, with the cards, driver, cache and runs mounted
	$(call run_or_show,$(DOCKER_NPU) -it $(IMAGE_NPU) bash)

shell-a100: table-readable ## interactive shell in the CUDA image, with the GPUs, cache and runs mounted
	$(call run_or_show,$(DOCKER_A100) -it $(IMAGE_A100) bash)

fetch: table-readable ## download bert-base-cased + GLUE CoLA once into KIT_CACHE (FETCH_API=both|openmind|transformers, FETCH_ON=npu|a100)
	$(call run_or_show,mkdir -p $(KIT_CACHE))
	$(call run_or_show,$(if $(filter a100,$(FETCH_ON)),$(DOCKER) run $(COMMON_RUN) $(IMAGE_A100),$(DOCKER_NPU) $(IMAGE_NPU)) python -m recipe.fetch --cache /cache --api $(FETCH_API))

lock: $(VENV)/.stamp ## regenerate docker/locks/*.in from docker/versions.toml and re-resolve the hash locks (uv, PyPI)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) docker/lock.py

lint-docker: $(VENV)/.stamp ## hadolint on both Dockerfiles, ruff on docker/*.py
	$(VENV)/bin/hadolint docker/npu/Dockerfile docker/cuda/Dockerfile
	$(VENV)/bin/ruff check docker

lint: lint-docker

# The images' Python layer on the host: Python 3.10 from pyenv, the CUDA lock, recipe + verify.
PYENV_ROOT_DIR = $(or $(shell pyenv root 2>/dev/null),$(HOME)/.pyenv)
PY310_BIN      = $(shell ls -d $(PYENV_ROOT_DIR)/versions/3.10.*/bin 2>/dev/null | sort -V | tail -n 1)

test-pinned: $(VENV)/.stamp ## tox -e pinned: the CUDA lock on Python 3.10 (pyenv), smoke runs on both APIs, verify's environment checks
	@test -n "$(PY310_BIN)" || { echo "test-pinned: no Python 3.10 under $(PYENV_ROOT_DIR)/versions/ (fix: pyenv install 3.10)" >&2; exit 2; }
	PATH="$(PY310_BIN):$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/tox -e pinned
