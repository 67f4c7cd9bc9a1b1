# The device check (docs/performance.md): everything a lent GPU should measure, in one command of <= 8 minutes with no
# network (dev/device_check.py). On the GPU machine: `make device-check DEVICE_OUT=<dir>`; its python3 must
# hold torch with CUDA. Packages the GPU image may lack (datasets, dill, multiprocess) come from DEVICE_WHEELS,
# filled beforehand on a machine with network by `make device-wheels` (the folder is git-ignored: carry it).
# Then `make device-record DEVICE_JSON=<dir>/device-check.json` appends the result to results/measured.json.
DEVICE_PY        ?= python3
DEVICE_OUT       ?= runs/device-check
DEVICE_ARGS      ?=
DEVICE_WHEELS    ?= .wheels/device
DEVICE_PYVERSION ?= 3.12
DEVICE_JSON      ?= $(DEVICE_OUT)/device-check.json
DEVICE_WHEELS_EXTRA ?=   # e.g. pyarrow==26.0.1 when the GPU image's pyarrow is older than datasets needs
# pure-Python wheels, pinned as in requirements/cpu.txt
DEVICE_PACKAGES  := $(shell grep -iE '^(datasets|dill|multiprocess)==' requirements/cpu.txt)

.PHONY: device-check device-check-dry device-wheels device-record
device-check: ## on a GPU: doctor + bert-base bench (tutorial/published/exact/fast) + exact-vs-published parity -> DEVICE_OUT
	PYTHONUNBUFFERED=1 $(DEVICE_PY) -m dev.device_check --out $(DEVICE_OUT) --wheels $(DEVICE_WHEELS) $(DEVICE_ARGS)

device-check-dry: $(VENV)/.stamp ## the device check's CPU dry path (tiny sizes, seconds; not a measurement)
	OMP_NUM_THREADS=1 $(PY) -m dev.device_check --dry-run --out $(DEVICE_OUT)-dry --workdir $(DEVICE_OUT)-dry-work

device-wheels: $(VENV)/.stamp ## download the wheels the device check installs on a GPU machine without network (DEVICE_WHEELS)
	$(PY) -m pip download --quiet --no-deps --only-binary=:all: --python-version $(DEVICE_PYVERSION) \
	  --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 -d $(DEVICE_WHEELS) $(DEVICE_PACKAGES) $(DEVICE_WHEELS_EXTRA)

device-record: $(VENV)/.stamp ## append a measured DEVICE_JSON (never a dry run) to results/measured.json
	$(PY) -m dev.device_check --record $(DEVICE_JSON)
