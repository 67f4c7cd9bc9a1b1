"""One check per catalogue entry. Each takes a `System` and returns a `Result`:
ok / warn / fail / n/a, the evidence it saw (a version, a path, an error line) and, unless ok,
the fix (the catalogue's, or a sharper one built from what was seen).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from recipe.errors import KitError
from verify import probes
from verify.catalogue import BY_ID, SET_ENV
from verify.system import System

OK, WARN, FAIL, NA = "ok", "warn", "fail", "n/a"
STATUSES = (OK, WARN, FAIL, NA)


@dataclass
class Result:
    id: str
    status: str
    evidence: str
    fix: str | None = None

    def __post_init__(self):
        assert self.status in STATUSES, self.status
        if self.status in (WARN, FAIL) and self.fix is None:
            self.fix = BY_ID[self.id].fix
        if self.status in (OK, NA):
            self.fix = None

    @property
    def title(self) -> str:
        return BY_ID[self.id].title

    def as_dict(self) -> dict:
        return {"id": self.id, "title": self.title, "status": self.status, "evidence": self.evidence,
                "fix": self.fix}


def base_version(version: str | None) -> str | None:
    """'2.1.0+cpu' -> '2.1.0' (local build labels do not change the API)."""
    return version.split("+", 1)[0] if version else None


def version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version)[:3])


def compat_rows() -> list[dict] | None:
    """The version table's rows, or None where the table is not shipped."""
    try:
        from recipe.tools import versions
        return versions.compat_rows()
    except (ImportError, OSError, KitError):  # a missing table is reported, not fatal
        return None


def _npu_import_kinds(system: System) -> list[str]:
    return probes.diagnose(system.torch_npu_probe) if system.dist("torch_npu") else []


# --------------------------------------------------------------------------- frameworks
def frameworks(system: System) -> Result:
    meta = system.meta
    if not meta.get("ok"):
        return Result("frameworks", FAIL, f"python probe failed: {probes.key_line(meta)}",
                      fix=f"check the interpreter {system.python}")
    found = meta["frameworks"]
    versions = ", ".join(f"{tag}={system.dist({'pt': 'torch', 'ms': 'mindspore'}[tag])}" for tag in found)
    if len(found) > 1:
        return Result("frameworks", FAIL,
                      f"RuntimeError: Multiple frameworks detected, including: {', '.join(found)}. ({versions})")
    if not found:
        shadow = [name for name, shadowed in meta.get("shadowed", {}).items() if shadowed]
        note = f"; a `{shadow[0]}` module without dist-info does not count" if shadow else ""
        return Result("frameworks", FAIL, f"neither torch nor mindspore is installed{note}",
                      fix="install the kit's stack: `pip install -r requirements/cpu.txt` or use a kit image")
    return Result("frameworks", OK, versions)


# --------------------------------------------------------------------------- CANN
def cann_toolkit(system: System) -> Result:
    if not system.expects_npu:
        return Result("cann-toolkit", NA, "no Ascend install, torch_npu or NPU on this machine")
    if system.toolkit_info_file is None:
        where = system.toolkit_home or system.ascend_root / "ascend-toolkit" / "latest"
        return Result("cann-toolkit", FAIL, f"no ascend_toolkit_install.info under {where}")
    version = system.cann_version or "?"
    rows = compat_rows()
    evidence = f"CANN {version} ({system.toolkit_info_file})"
    if rows is not None and version not in {row["cann"] for row in rows}:
        known = ", ".join(sorted({row["cann"] for row in rows}))
        return Result("cann-toolkit", WARN, f"{evidence}; the version table knows {known}")
    return Result("cann-toolkit", OK, evidence)


def cann_env(system: System) -> Result:
    if system.toolkit_info_file is None:
        return Result("cann-env", NA, "no CANN toolkit installed")
    missing = [name for name in ("ASCEND_HOME_PATH", "ASCEND_OPP_PATH") if not system.environ.get(name)]
    if missing:
        return Result("cann-env", FAIL, f"{' and '.join(missing)} unset: set_env.sh was not sourced")
    return Result("cann-env", OK, f"ASCEND_HOME_PATH={system.environ['ASCEND_HOME_PATH']}")


def cann_libs(system: System) -> Result:
    if "cann-libs" in _npu_import_kinds(system):
        return Result("cann-libs", FAIL, probes.key_line(system.torch_npu_probe), fix=f"`{SET_ENV}`")
    if system.toolkit_info_file is None:
        return Result("cann-libs", NA, "no CANN toolkit installed")
    found = {name: system.find_library(name) for name in ("libhccl.so", "libascendcl.so")}
    missing = [name for name, path in found.items() if path is None]
    if missing:
        return Result("cann-libs", FAIL, f"{', '.join(missing)} not in any LD_LIBRARY_PATH directory")
    return Result("cann-libs", OK, ", ".join(str(path) for path in found.values()))


def cann_python_deps(system: System) -> Result:
    if "python-deps" in _npu_import_kinds(system):
        return Result("cann-python-deps", FAIL, probes.key_line(system.torch_npu_probe))
    if system.toolkit_info_file is None:
        return Result("cann-python-deps", NA, "no CANN toolkit installed")
    modules = system.meta.get("modules", {})
    missing = [dist for dist, module in probes.CANN_PYTHON_DEPS.items() if not modules.get(module)]
    if missing:
        return Result("cann-python-deps", FAIL, f"not importable: {', '.join(missing)}",
                      fix=f"`pip install {' '.join(missing)}` (the NPU image pins them)")
    return Result("cann-python-deps", OK, ", ".join(f"{d}={system.dist(d)}" for d in probes.CANN_PYTHON_DEPS))


# --------------------------------------------------------------------------- driver and devices
def driver_libs(system: System) -> Result:
    if "driver-libs" in _npu_import_kinds(system):
        return Result("driver-libs", FAIL, probes.key_line(system.torch_npu_probe))
    if not system.expects_npu:
        return Result("driver-libs", NA, "no Ascend install, torch_npu or NPU on this machine")
    hal = system.find_library("libascend_hal.so", system.driver_lib_dirs)
    problems = []
    if hal is None:
        problems.append(f"libascend_hal.so not under {system.driver_dir / 'lib64'} nor on LD_LIBRARY_PATH")
    if system.driver_version is None:
        problems.append(f"{system.driver_dir / 'version.info'} missing")
    if problems:
        return Result("driver-libs", FAIL, "; ".join(problems))
    return Result("driver-libs", OK, f"driver {system.driver_version}, {hal}")


def driver_devices(system: System) -> Result:
    if not system.expects_npu:
        return Result("driver-devices", NA, "no Ascend install, torch_npu or NPU on this machine")
    controls = ["davinci_manager", "devmm_svm", "hisi_hdc"]
    missing = [name for name in controls if not system.dev_exists(name)]
    if not system.davinci_devices:
        return Result("driver-devices", FAIL, f"no {system.dev_dir}/davinci<N> device node")
    if missing:
        return Result("driver-devices", FAIL, f"{', '.join(missing)} missing in {system.dev_dir}")
    return Result("driver-devices", OK, ", ".join(system.davinci_devices))


def npu_smi(system: System) -> Result:
    run = system.npu_smi
    if run.path is None:
        if not system.expects_npu:
            return Result("npu-smi", NA, "no Ascend install, torch_npu or NPU on this machine")
        return Result("npu-smi", FAIL, "npu-smi not on PATH")
    if not run.ran_ok or not system.npu_chips:
        return Result("npu-smi", FAIL, f"`npu-smi info` (exit {run.returncode}): "
                                       f"{probes.first_line(run.output) or 'no NPU in its table'}")
    chips = system.npu_chips
    summary = ", ".join(f"NPU {c['npu']}.{c['chip']} {c['name']} {c['health']} "
                        f"HBM {c['hbm_used_mb']}/{c['hbm_total_mb']} MB" for c in chips)
    unhealthy = [c for c in chips if c["health"] != "OK"]
    if unhealthy:
        first = unhealthy[0]
        return Result("npu-smi", WARN, summary,
                      fix=f"`npu-smi info -t health -i {first['npu']}` to read the alarm; run on a healthy NPU "
                          f"(ASCEND_RT_VISIBLE_DEVICES)")
    return Result("npu-smi", OK, f"driver {system.npu_smi_driver}: {summary}")


# --------------------------------------------------------------------------- versions
def versions_table(system: System) -> Result:
    torch_npu, cann = system.dist("torch_npu"), system.cann_version
    if not torch_npu and not cann:
        return Result("versions-table", NA, "no torch_npu and no CANN: nothing to match")
    rows = compat_rows()
    if rows is None:
        return Result("versions-table", WARN, "version table (docker/versions.toml) not found",
                      fix="run from a kit checkout or image, or set KIT_VERSIONS_TOML")
    torch = base_version(system.dist("torch"))
    seen = f"torch {torch}, torch_npu {torch_npu}, CANN {cann}"
    match = [row for row in rows if row["cann"] == cann and row["torch"] == torch
             and row["torch_npu"] == base_version(torch_npu)]
    if not match:
        for_cann = [row for row in rows if row["cann"] == cann] or rows
        pick = next((row for row in for_cann if row["torch"] == torch), for_cann[-1])
        return Result("versions-table", FAIL, f"{seen}: no row of the version table has this combination",
                      fix=f"`pip install torch=={pick['torch']} torch_npu=={pick['torch_npu']}` "
                          f"(CANN {pick['cann']}; {pick['source']})")
    row = match[0]
    wanted_driver = row.get("driver") or row.get("hdk")
    driver = system.driver_version
    if wanted_driver and driver and driver.lower() != wanted_driver.lower():
        return Result("versions-table", WARN, f"{seen}, driver {driver}: the table pairs CANN {cann} "
                                              f"with driver {wanted_driver}",
                      fix=f"install Ascend HDK {wanted_driver} (driver + firmware) on the host")
    return Result("versions-table", OK, f"{seen}, driver {driver} (row: {row['source']})")


def image_lock(system: System) -> Result:
    image = system.environ.get("KIT_IMAGE")
    if not image:
        return Result("image-lock", NA, "not inside a kit image (KIT_IMAGE unset)")
    try:
        from recipe.tools import versions
        arch = system.meta.get("machine", "")
        lock = versions.parse_lock(versions.lock_path(image, arch))
        separate = versions.lock_path(image, arch, no_deps=True)  # e.g. torch-npu on x86_64
        if separate.is_file():
            lock.update(versions.parse_lock(separate))
    except (ImportError, OSError, KitError) as err:  # missing lock/table: report it, the rest still run
        return Result("image-lock", WARN, f"cannot read the lock of image {image!r}: {err}",
                      fix="rebuild the image so /opt/kit/docker/locks is shipped")
    installed = system.meta.get("dists", {})
    differ = [f"{name} {installed.get(name) or 'missing'} (lock {want})" for name, want in sorted(lock.items())
              if base_version(installed.get(name)) != base_version(want)]
    if differ:
        shown = "; ".join(differ[:6]) + (f"; … {len(differ) - 6} more" if len(differ) > 6 else "")
        return Result("image-lock", FAIL, shown)
    return Result("image-lock", OK, f"{len(lock)} distributions equal the {image} lock")


# --------------------------------------------------------------------------- torch_npu import
def torch_npu_abi(system: System) -> Result:
    return _npu_import_result(system, "torch-npu-abi", "torch-abi")


def torch_npu_cann(system: System) -> Result:
    return _npu_import_result(system, "torch-npu-cann", "cann-mismatch")


def cann_log_dir(environ: dict) -> str:
    """Where CANN writes plog and device logs: make run-npu/verify-npu point it into the run directory."""
    return environ.get("ASCEND_PROCESS_LOG_PATH") or "~/ascend/log (ASCEND_PROCESS_LOG_PATH unset)"


def _npu_import_result(system: System, entry_id: str, kind: str) -> Result:
    if not system.dist("torch_npu"):
        return Result(entry_id, NA, "torch_npu not installed")
    probe = system.torch_npu_probe
    kinds = probes.diagnose(probe)
    if kind in kinds:  # the plog names the failing op: say where CANN wrote it
        return Result(entry_id, FAIL, f"{probes.key_line(probe)}; CANN's logs: {cann_log_dir(system.environ)}")
    if probe.get("ok"):
        return Result(entry_id, OK, f"import torch_npu {probe.get('version')}: {probe.get('npu_count')} NPU(s)")
    return Result(entry_id, NA, f"import stopped earlier ({', '.join(kinds)}): {probes.key_line(probe, 100)}")


def torch_npu_exit(system: System) -> Result:
    if not system.dist("torch_npu"):
        return Result("torch-npu-exit", NA, "torch_npu not installed")
    probe = system.torch_npu_probe
    if "exit" not in probes.diagnose(probe):
        return Result("torch-npu-exit", OK, "import torch_npu returns or raises normally")
    how = probe.get("message") if probe.get("error") == "SystemExit" else (
        f"died with exit status {probe.get('returncode')}")
    said = probes.key_line(probe)
    return Result("torch-npu-exit", FAIL, f"import torch_npu ended the process: {how}"
                                          + (f"; it printed: {said}" if said and said != how else ""))


def torch_autoload(system: System) -> Result:
    torch, torch_npu = system.dist("torch"), system.dist("torch_npu")
    if not torch or not torch_npu:
        return Result("torch-autoload", NA, "needs both torch and torch_npu installed")
    if version_tuple(torch) < (2, 5):
        return Result("torch-autoload", NA, f"torch {torch} < 2.5 does not auto-load device backends")
    setting = system.environ.get("TORCH_DEVICE_BACKEND_AUTOLOAD", "1 (default)")
    probe = system.torch_probe
    if "autoload" in probes.diagnose(probe):
        return Result("torch-autoload", FAIL, f"import torch: {probes.key_line(probe)}")
    return Result("torch-autoload", OK, f"torch {torch} imports; TORCH_DEVICE_BACKEND_AUTOLOAD={setting}")


# --------------------------------------------------------------------------- devices as torch sees them
def accelerator(system: System) -> Result:
    if system.expects_npu and system.dist("torch_npu"):
        probe = system.torch_npu_probe
        hardware = len(system.npu_chips) or len(system.davinci_devices)
        if not probe.get("ok"):
            return Result("accelerator", FAIL, f"torch_npu unusable: {probes.key_line(probe, 100)}",
                          fix="fix the failing torch_npu / CANN checks above first")
        if probe.get("npu_count", 0) == 0:
            return Result("accelerator", FAIL, f"torch_npu sees 0 NPUs (npu-smi/dev list {hardware})")
        return Result("accelerator", OK, f"torch_npu: {probe['npu_count']} NPU(s), {probe.get('npu_name')}")
    if system.expects_cuda:
        probe = system.torch_probe
        if not probe.get("ok"):
            return Result("accelerator", FAIL, f"import torch: {probes.key_line(probe, 100)}")
        gpus = len(system.gpus) or len(system.nvidia_devices)
        if not probe.get("cuda_available"):
            why = "; ".join(probe.get("warnings", [])) or f"torch {probe.get('version')} (CUDA {probe.get('cuda')})"
            return Result("accelerator", FAIL, f"torch.cuda.is_available() is False with {gpus} GPU(s): {why}")
        names = ", ".join(sorted({g["name"] for g in system.gpus})) or "?"
        return Result("accelerator", OK, f"torch.cuda: {probe['cuda_count']} GPU(s), {names}")
    return Result("accelerator", NA, "no NPU or GPU here (no npu-smi, nvidia-smi, /dev/davinci*, /dev/nvidia*): "
                                     "CPU runs only")


def visible_devices(system: System) -> Result:
    findings, evidence = [], []
    for variable, physical in (("ASCEND_RT_VISIBLE_DEVICES", _npu_count(system)),
                               ("CUDA_VISIBLE_DEVICES", len(system.gpus) or len(system.nvidia_devices))):
        value = system.environ.get(variable)
        if value is None:
            continue
        evidence.append(f"{variable}={value!r}")
        problem = _visible_problem(variable, value, physical)
        if problem:
            findings.append(problem)
    if findings:
        return Result("visible-devices", FAIL, "; ".join(findings))
    if evidence:
        return Result("visible-devices", OK, ", ".join(evidence))
    if system.expects_npu or system.expects_cuda:
        return Result("visible-devices", OK, "unset: every device is visible")
    return Result("visible-devices", NA, "unset, and no accelerator here")


def _npu_count(system: System) -> int:
    # logical ids count chips (a dual-chip board shows two devices)
    return len(system.npu_chips) or len(system.davinci_devices)


def _visible_problem(variable: str, value: str, physical: int) -> str | None:
    items = [item.strip() for item in value.split(",")]
    if value.strip() in ("", "-1"):
        return f"{variable}={value!r} hides every device"
    if variable == "CUDA_VISIBLE_DEVICES" and all(i.startswith(("GPU-", "MIG-")) for i in items):
        return None  # UUIDs: cannot be range-checked against nvidia-smi's csv
    if not all(item.isdigit() for item in items):
        return f"{variable}={value!r}: expected comma-separated device ids like 0,1"
    ids = [int(item) for item in items]
    if len(set(ids)) != len(ids):
        return f"{variable}={value!r} repeats an id"
    if physical and max(ids) >= physical:
        return f"{variable}={value!r} names id {max(ids)} but only {physical} device(s) exist (0..{physical - 1})"
    return None


# --------------------------------------------------------------------------- CUDA driver
# Minimum Linux driver for CUDA minor-version compatibility (a torch wheel bundles its runtime).
CUDA_MIN_DRIVER = {11: "450.80.02", 12: "525.60.13", 13: "580.65.06"}
# The driver each toolkit release shipped with (below it: PTX JIT and some features may fail).
CUDA_TOOLKIT_DRIVER = {"11.8": "520.61.05", "12.0": "525.60.13", "12.1": "530.30.02", "12.2": "535.54.03",
                       "12.3": "545.23.06", "12.4": "550.54.14", "12.5": "555.42.02", "12.6": "560.28.03",
                       "12.8": "570.26", "12.9": "575.51.03", "13.0": "580.65.06"}


def cuda_driver(system: System) -> Result:
    driver = next((g["driver"] for g in system.gpus if g.get("driver")), None)
    if not driver:
        return Result("cuda-driver", NA, "no NVIDIA driver (nvidia-smi) here")
    probe = system.torch_probe
    if not probe.get("ok") or not probe.get("cuda"):
        return Result("cuda-driver", NA, f"driver {driver}; torch here is not a CUDA build "
                                         f"({probe.get('version') or probes.key_line(probe, 80)})")
    cuda = probe["cuda"]
    major = version_tuple(cuda)[0]
    minimum = CUDA_MIN_DRIVER.get(major)
    release = CUDA_TOOLKIT_DRIVER.get(".".join(str(p) for p in version_tuple(cuda)[:2]))
    seen = f"driver {driver}, torch {probe.get('version')} built for CUDA {cuda}"
    too_old = [w for w in probe.get("warnings", []) if "too old" in w]
    if too_old or (minimum and version_tuple(driver) < version_tuple(minimum)):
        return Result("cuda-driver", FAIL, f"{seen}: needs >= {minimum}" + (f" ({too_old[0][:120]})" if too_old else ""),
                      fix=f"upgrade the host NVIDIA driver to >= {release or minimum} (CUDA {cuda}), or install "
                          f"a torch built for an older CUDA")
    if release and version_tuple(driver) < version_tuple(release):
        return Result("cuda-driver", WARN, f"{seen}: runs through minor-version compatibility "
                                           f"(CUDA {cuda} shipped with {release})",
                      fix=f"upgrade the host NVIDIA driver to >= {release} if kernels fail to JIT")
    return Result("cuda-driver", OK, seen)


# --------------------------------------------------------------------------- tracking, multi-card, openmind
def swanlab_cloud(system: System) -> Result:
    mode = system.environ.get("SWANLAB_MODE", "").strip().lower()
    has_key = bool(system.environ.get("SWANLAB_API_KEY"))
    root = system.environ.get("SWANLAB_ROOT") or system.environ.get("SWANLAB_SAVE_DIR")
    saved_login = (Path(root) if root else system.home / ".swanlab").joinpath(".netrc").is_file()
    key_note = "SWANLAB_API_KEY set (value hidden)" if has_key else "no SWANLAB_API_KEY"
    if not system.dist("swanlab"):
        return Result("swanlab-cloud", NA, "swanlab not installed (runs use --no-swanlab)")
    if mode and mode not in ("cloud", "offline", "local", "disabled"):
        return Result("swanlab-cloud", FAIL, f"SWANLAB_MODE={mode!r} is not cloud/offline/local/disabled",
                      fix="`export SWANLAB_MODE=offline`")
    if mode != "cloud":
        return Result("swanlab-cloud", OK, f"SWANLAB_MODE={mode or 'unset (the recipe logs offline)'}; {key_note}")
    if has_key or saved_login:
        return Result("swanlab-cloud", OK, f"cloud; {key_note if has_key else 'saved login in ~/.swanlab'}")
    if system.stdin_isatty:
        return Result("swanlab-cloud", WARN, f"cloud, {key_note}: swanlab will ask for a login interactively",
                      fix="`export SWANLAB_API_KEY=...` (or `swanlab login`) before a long run")
    return Result("swanlab-cloud", FAIL, f"cloud, {key_note}, no saved login and stdin is not a TTY: swanlab.init "
                                         "stops (the kit's recipe falls back to offline)")


def hccl_timeouts(system: System) -> Result:
    cards = _npu_count(system)
    visible = system.environ.get("ASCEND_RT_VISIBLE_DEVICES")
    if visible and all(i.strip().isdigit() for i in visible.split(",")):
        cards = min(cards, len(visible.split(","))) if cards else len(visible.split(","))
    world = system.environ.get("WORLD_SIZE", "")
    multi = cards > 1 or (world.isdigit() and int(world) > 1)
    settings = {name: system.environ.get(name) for name in ("HCCL_CONNECT_TIMEOUT", "HCCL_EXEC_TIMEOUT")}
    shown = ", ".join(f"{k}={v}" for k, v in settings.items() if v is not None) or "defaults (120 s / 1800 s)"
    bad = [f"{k}={v!r} is not whole seconds" for k, v in settings.items() if v is not None and not v.isdigit()]
    if bad:
        return Result("hccl-timeouts", FAIL, "; ".join(bad))
    if not system.expects_npu or not multi:
        return Result("hccl-timeouts", NA, f"single card or no NPU ({shown})")
    if settings["HCCL_CONNECT_TIMEOUT"] is None or int(settings["HCCL_CONNECT_TIMEOUT"]) <= 120:
        return Result("hccl-timeouts", WARN, f"{cards} NPUs, {shown}: the 120 s connect timeout is shorter than "
                                             "rank 0's tokenization of CoLA at max_length 512")
    return Result("hccl-timeouts", OK, f"{cards} NPUs, {shown}")


def openmind_traceback(system: System) -> Result:
    version = system.dist("openmind")
    if not version:
        return Result("openmind-traceback", NA, "openmind not installed")
    setting = system.environ.get("OPENMIND_HIDE_STACKTRACE")
    if (setting or "").strip().upper() == "FALSE":
        return Result("openmind-traceback", OK, f"openmind {version}, OPENMIND_HIDE_STACKTRACE=FALSE")
    return Result("openmind-traceback", WARN, f"openmind {version}, OPENMIND_HIDE_STACKTRACE="
                                              f"{setting if setting is not None else 'unset'}: "
                                              "`import openmind` sets sys.tracebacklimit = 0")


# Catalogue entry `some-id` is checked by the function `some_id` above. A table, not a decorator:
# mutmut (make mutation) leaves decorated functions unmutated.
CHECKS = {entry_id: globals()[entry_id.replace("-", "_")] for entry_id in BY_ID}


def run_all(system: System, only: list[str] | None = None) -> list[Result]:
    """Every check in catalogue order; a check that crashes is reported as a failure of its own."""
    from verify.catalogue import CATALOGUE
    results = []
    for entry in CATALOGUE:
        if only and entry.id not in only:
            continue
        try:
            results.append(CHECKS[entry.id](system))
        except Exception as err:  # noqa: BLE001 - a doctor bug must not hide the other diagnoses
            results.append(Result(entry.id, FAIL, f"the check itself crashed: {type(err).__name__}: {err}",
                                  fix="report this as a kit bug (tests/test_doctor*.py)"))
    return results
