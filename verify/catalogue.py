"""The troubleshooting catalogue: one entry per known way this stack breaks.

Data only. verify/checks.py has one check per entry (same id); docs/troubleshooting.md is
generated from this list (`python -m verify.doctor --markdown`) and a test fails when they drift.
"""

from __future__ import annotations

from dataclasses import dataclass

SET_ENV = "source /usr/local/Ascend/ascend-toolkit/set_env.sh"
NPU_DOCKER_FLAGS = (
    "--device /dev/davinci0 --device /dev/davinci_manager --device /dev/devmm_svm --device /dev/hisi_hdc "
    "-v /usr/local/dcmi:/usr/local/dcmi -v /usr/local/bin/npu-smi:/usr/local/bin/npu-smi "
    "-v /usr/local/Ascend/driver/lib64/:/usr/local/Ascend/driver/lib64/ "
    "-v /usr/local/Ascend/driver/version.info:/usr/local/Ascend/driver/version.info "
    "-v /etc/ascend_install.info:/etc/ascend_install.info"
)


@dataclass(frozen=True)
class Entry:
    id: str
    title: str
    symptom: str  # what the user sees
    detect: str   # how the doctor tells
    fix: str      # the exact command or setting


CATALOGUE: tuple[Entry, ...] = (
    Entry(
        "frameworks", "Two frameworks installed (torch and mindspore)",
        "`import openmind` fails with `RuntimeError: Multiple frameworks detected, including: pt, ms.`",
        "openMind's own rule: a framework counts when `importlib.util.find_spec(name)` finds it AND "
        "`importlib.metadata` has its distribution (a bare `mindspore/` directory without dist-info does "
        "not count); `torch` -> pt, `mindspore` -> ms. No environment variable selects one.",
        "one framework per environment: `pip uninstall -y mindspore mindformers` (the kit's images are PyTorch)",
    ),
    Entry(
        "cann-toolkit", "CANN toolkit missing or not the table's version",
        "`torch_npu` cannot load its libraries; `torch.version.cann` is empty",
        "reads `version=` from `<ASCEND_HOME_PATH>/<arch>-linux/ascend_toolkit_install.info` (default "
        "/usr/local/Ascend/ascend-toolkit/latest) and compares it with the version table's CANN rows",
        "use the kit's NPU image (`make build-npu`), or install the CANN 8.0.RC3 toolkit + kernels on the host",
    ),
    Entry(
        "cann-env", "CANN environment not sourced (set_env.sh)",
        "`ImportError: libhccl.so: cannot open shared object file` in a non-login `docker run ... python`",
        "the toolkit is installed but ASCEND_HOME_PATH / ASCEND_OPP_PATH are unset",
        f"`{SET_ENV}` (in the image: the entrypoint sources it; add it to your shell or job script)",
    ),
    Entry(
        "cann-libs", "libhccl.so / libascendcl.so not found",
        "`ImportError: libhccl.so: cannot open shared object file: No such file or directory. Please check "
        "that the cann package is installed. Please run 'source set_env.sh' in the CANN installation path.`",
        "looks for libhccl.so and libascendcl.so in the LD_LIBRARY_PATH directories, and for those names "
        "in the text of a failed `import torch_npu`",
        f"`{SET_ENV}` (it puts the toolkit's lib64 on LD_LIBRARY_PATH)",
    ),
    Entry(
        "driver-libs", "Ascend driver not mounted into the container (libascend_hal.so, version.info)",
        "`ImportError: libascend_hal.so: cannot open shared object file`, or `npu-smi` / version.info missing",
        "looks for libascend_hal.so under /usr/local/Ascend/driver/lib64/{driver,common} and LD_LIBRARY_PATH, "
        "and reads `Version=` from /usr/local/Ascend/driver/version.info",
        f"mount the host driver: `docker run {NPU_DOCKER_FLAGS} ...` (or `make run-npu`)",
    ),
    Entry(
        "driver-devices", "NPU device nodes missing (/dev/davinci*)",
        "`torch.npu.device_count()` is 0; `npu-smi info` shows no NPU inside the container",
        "lists /dev/davinci<N> and /dev/davinci_manager, /dev/devmm_svm, /dev/hisi_hdc",
        "pass the devices: `docker run --device /dev/davinci0 --device /dev/davinci_manager "
        "--device /dev/devmm_svm --device /dev/hisi_hdc ...` (or `-e ASCEND_VISIBLE_DEVICES=0` with Ascend Docker Runtime)",
    ),
    Entry(
        "npu-smi", "npu-smi missing, failing, or an NPU not healthy",
        "`npu-smi: command not found`, `dcmi module initialize failed`, or Health `Warning`/`Alarm`",
        "runs `npu-smi info`, parses the chip table (both the 96- and 91-column layouts) and its Health column",
        "mount it: `-v /usr/local/bin/npu-smi:/usr/local/bin/npu-smi -v /usr/local/dcmi:/usr/local/dcmi`; "
        "for an unhealthy NPU: `npu-smi info -t health -i <npu>` and move to another card",
    ),
    Entry(
        "versions-table", "torch / torch_npu / CANN / driver versions that do not belong together",
        "undefined symbols, `ERR00008`, `EH9999`, or silent wrong results after an upgrade",
        "compares installed torch and torch_npu (importlib.metadata), the CANN version and the driver "
        "version with the version table's compatibility rows (docker/versions.toml [[compat]])",
        "install a matching pair from the table: `pip install torch==2.1.0 torch_npu==2.1.0.post8` "
        "for CANN 8.0.RC3 (driver HDK 24.1.RC3)",
    ),
    Entry(
        "torch-npu-abi", "torch_npu built for another torch (undefined symbol)",
        "`ImportError: .../torch_npu/lib/libtorch_npu.so: undefined symbol: _ZNK3c10...`",
        "imports torch_npu in a child interpreter and looks for `undefined symbol` in what it printed",
        "reinstall the pair together: `pip install torch==2.1.0 torch_npu==2.1.0.post8`",
    ),
    Entry(
        "torch-npu-cann", "torch_npu does not match the installed CANN (ERR00008 / EH9999)",
        "`ERR00008 PTA resource not found` or `EH9999 Inner Error` at import or at the first NPU op",
        "imports torch_npu and touches NPU 0 in a child interpreter; looks for ERR00008 / EH9999",
        "install the torch_npu of your CANN's row in the table (CANN 8.0.RC3 -> torch_npu 2.1.0.post8), "
        "or the CANN that matches your torch_npu",
    ),
    Entry(
        "torch-npu-exit", "`import torch_npu` ends the process (SystemExit or crash)",
        "the program stops right after torch_npu prints an error; `try/except ImportError` does not catch it",
        "the child interpreter's import ends in SystemExit or dies by a signal instead of raising",
        "fix the cause printed in the evidence (usually the CANN environment: "
        f"`{SET_ENV}`), then `python -c 'import torch_npu'` must print nothing",
    ),
    Entry(
        "cann-python-deps", "Python packages CANN needs are missing (decorator, sympy, cffi, protobuf, attrs)",
        "`EH9999 ... init failed` or `No module named 'decorator'` at the first NPU op",
        "checks that decorator, sympy, cffi, google.protobuf and attr import (find_spec) where CANN is installed",
        "`pip install decorator sympy cffi protobuf attrs` (the NPU image pins them)",
    ),
    Entry(
        "torch-autoload", "torch >= 2.5 auto-loads a broken torch_npu",
        "`import torch` itself fails: `Failed to load the backend extension: torch_npu. You can disable "
        "extension auto-loading with TORCH_DEVICE_BACKEND_AUTOLOAD=0.`",
        "imports torch in a child interpreter; torch >= 2.5 with torch_npu installed loads it through the "
        "`torch.backends` entry point unless TORCH_DEVICE_BACKEND_AUTOLOAD=0",
        "`export TORCH_DEVICE_BACKEND_AUTOLOAD=0` to get torch back, then fix torch_npu (see torch-npu-*)",
    ),
    Entry(
        "accelerator", "No accelerator visible to torch",
        "the run falls back to CPU, or `torch.npu.device_count()` / `torch.cuda.is_available()` says none",
        "compares what npu-smi / nvidia-smi / /dev list with what torch_npu / torch.cuda report",
        "check the container's device flags (`--device /dev/davinci*` or `--gpus all`) and the *_VISIBLE_DEVICES variables",
    ),
    Entry(
        "visible-devices", "ASCEND_RT_VISIBLE_DEVICES / CUDA_VISIBLE_DEVICES hide or misname devices",
        "`device_count()` is 0 or smaller than expected; `invalid device ordinal`",
        "parses the variables (comma-separated ids) and compares them with the devices npu-smi / nvidia-smi list",
        "`unset ASCEND_RT_VISIBLE_DEVICES CUDA_VISIBLE_DEVICES`, or list existing ids, e.g. "
        "`export ASCEND_RT_VISIBLE_DEVICES=0,1`",
    ),
    Entry(
        "cuda-driver", "NVIDIA driver too old for torch's CUDA",
        "`The NVIDIA driver on your system is too old`; `torch.cuda.is_available()` is False",
        "compares the driver version from nvidia-smi with the minimum driver of `torch.version.cuda` "
        "(CUDA minor-version compatibility: 12.x needs >= 525.60.13, 11.x >= 450.80.02)",
        "upgrade the host driver (>= 530.30.02 for CUDA 12.1), or use a torch built for an older CUDA",
    ),
    Entry(
        "swanlab-cloud", "SwanLab in cloud mode with no API key and no terminal",
        "`Failed to initialize SwanLab in online mode: no TTY is available for interactive login`",
        "SWANLAB_MODE=cloud with neither SWANLAB_API_KEY nor a saved login (~/.swanlab/.netrc) and stdin not a TTY "
        "(the key's value is never shown)",
        "`export SWANLAB_MODE=offline` (upload later with `swanlab sync`), or `export SWANLAB_API_KEY=...`",
    ),
    Entry(
        "hccl-timeouts", "HCCL timeouts for multi-card runs",
        "`EI0006` / `EI0002` HCCL timeout while rank 0 tokenizes or evaluates and the others wait",
        "on more than one NPU, checks that HCCL_CONNECT_TIMEOUT / HCCL_EXEC_TIMEOUT are whole seconds and "
        "that the connect timeout is raised from its 120 s default",
        "`export HCCL_CONNECT_TIMEOUT=1200 HCCL_EXEC_TIMEOUT=1800`",
    ),
    Entry(
        "openmind-traceback", "openmind hides tracebacks",
        "an error prints one line and no traceback (`import openmind` sets `sys.tracebacklimit = 0`)",
        "openmind is installed and OPENMIND_HIDE_STACKTRACE is not FALSE",
        "`export OPENMIND_HIDE_STACKTRACE=FALSE` while debugging",
    ),
    Entry(
        "image-lock", "Installed versions differ from the image's lock",
        "results differ from a colleague's run of the same image tag",
        "inside a kit image (KIT_IMAGE=npu|cuda), compares every installed distribution with "
        "docker/locks/<image>-<arch>.txt",
        "rebuild the image (`make build-npu` / `make build-a100`) instead of pip-installing into it",
    ),
)

BY_ID = {entry.id: entry for entry in CATALOGUE}
