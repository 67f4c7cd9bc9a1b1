"""Every catalogue entry: its healthy state and its broken state, built with faithful fakes
(tests/fakes). Each broken test asserts the diagnosis (status + evidence) and the fix text."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from verify import probes
from verify.catalogue import CATALOGUE, SET_ENV
from verify.checks import CHECKS, run_all
from verify.system import System

try:
    from tests import fakes
except ImportError:  # tests/ on sys.path instead of the repository root
    import fakes

NPU_CHECKS = ["frameworks", "cann-toolkit", "cann-env", "cann-libs", "driver-libs", "driver-devices", "npu-smi",
              "versions-table", "torch-npu-abi", "torch-npu-cann", "torch-npu-exit", "cann-python-deps",
              "accelerator", "visible-devices"]


class Machine:
    """A fake machine under tmp_path: Ascend tree, /dev, a bin dir with tools, a site dir."""

    def __init__(self, tmp_path):
        self.tmp = tmp_path
        self.root = tmp_path / "Ascend"
        self.dev = tmp_path / "dev"
        self.bin = tmp_path / "bin"
        self.site = tmp_path / "site"
        self.home = tmp_path / "home"
        self.env = fakes.base_environ(self.bin, self.site)
        self.env["HOME"] = str(self.home)
        self.tty = False

    def system(self) -> System:
        return System(environ=dict(self.env), ascend_root=self.root, dev_dir=self.dev, stdin_isatty=self.tty,
                      home=self.home)

    def run(self, check_id: str):
        return CHECKS[check_id](self.system())


def cann_deps(site):
    for name, module, version in (("decorator", "decorator", "5.1.1"), ("sympy", "sympy", "1.13.3"),
                                  ("cffi", "cffi", "1.17.1"), ("protobuf", None, "6.31.1"),
                                  ("attrs", "attr", "24.2.0")):
        fakes.write_dist(site, name, version, package=module)
    (site / "google" / "protobuf").mkdir(parents=True, exist_ok=True)
    (site / "google" / "protobuf" / "__init__.py").write_text("")


@pytest.fixture
def cpu(tmp_path):
    machine = Machine(tmp_path)
    machine.dev.mkdir()
    return machine


@pytest.fixture
def npu(tmp_path):
    """A healthy Atlas 800T A2 container: CANN 8.0.RC3 sourced, driver 24.1.rc3 mounted, 1 NPU."""
    machine = Machine(tmp_path)
    fakes.fake_ascend_root(machine.root)
    fakes.fake_dev(machine.dev, npus=1)
    fakes.fake_npu_smi(machine.bin, "healthy_910b4.txt")
    fakes.fake_torch(machine.site, "2.1.0")
    fakes.fake_torch_npu(machine.site, "ok")
    cann_deps(machine.site)
    machine.env.update(fakes.sourced_env(machine.root))
    return machine


@pytest.fixture
def gpu(tmp_path):
    machine = Machine(tmp_path)
    fakes.fake_dev(machine.dev, npus=0, gpus=1)
    fakes.fake_nvidia_smi(machine.bin)
    fakes.fake_torch(machine.site, "2.1.0", cuda="12.1", cuda_available=True)
    return machine


def by_id(results):
    return {r.id: r for r in results}


# --------------------------------------------------------------------------- healthy machines
def test_healthy_npu_machine_passes_every_npu_check(npu):
    results = by_id(run_all(npu.system(), NPU_CHECKS))
    assert {i: r.status for i, r in results.items()} == dict.fromkeys(NPU_CHECKS, "ok")
    assert "CANN 8.0.RC3" in results["cann-toolkit"].evidence
    assert "driver 24.1.rc3" in results["driver-libs"].evidence
    assert "torch 2.1.0, torch_npu 2.1.0.post8, CANN 8.0.RC3" in results["versions-table"].evidence
    assert "910B4 OK HBM 2911/32768 MB" in results["npu-smi"].evidence
    assert results["accelerator"].evidence.startswith("torch_npu: 1 NPU(s)")
    assert all(r.fix is None for r in results.values())


def test_cpu_machine_reports_accelerator_checks_not_applicable(cpu):
    fakes.fake_torch(cpu.site, "2.1.0")
    results = by_id(run_all(cpu.system()))
    assert results["frameworks"].status == "ok"
    assert not [r.id for r in results.values() if r.status == "fail"]
    for entry_id in ("cann-toolkit", "cann-env", "cann-libs", "driver-libs", "driver-devices", "npu-smi",
                     "torch-npu-abi", "torch-npu-exit", "accelerator", "cuda-driver", "hccl-timeouts"):
        assert results[entry_id].status == "n/a", entry_id


def test_healthy_gpu_machine(gpu):
    results = by_id(run_all(gpu.system(), ["accelerator", "cuda-driver", "visible-devices"]))
    assert results["accelerator"].status == "ok" and "NVIDIA A100-SXM4-80GB" in results["accelerator"].evidence
    assert results["cuda-driver"].status == "ok"
    assert "driver 535.104.05" in results["cuda-driver"].evidence and "CUDA 12.1" in results["cuda-driver"].evidence


# --------------------------------------------------------------------------- frameworks
def test_two_frameworks_reproduce_openmind_error(npu):
    fakes.fake_mindspore(npu.site)
    result = npu.run("frameworks")
    assert result.status == "fail"
    assert "RuntimeError: Multiple frameworks detected, including: pt, ms. " in result.evidence
    assert "ms=2.4.0" in result.evidence
    assert result.fix.startswith("one framework per environment: `pip uninstall -y mindspore")


def test_mindspore_directory_without_dist_info_does_not_count(npu):
    fakes.fake_mindspore(npu.site, dist_info=False)  # openMind's rule needs the metadata too
    result = npu.run("frameworks")
    assert result.status == "ok" and result.evidence == "pt=2.1.0"


def test_no_framework_at_all(cpu):
    import subprocess
    import sys
    bare = cpu.tmp / "bare"  # an interpreter with no torch installed
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True, timeout=120)
    (cpu.site / "torch").mkdir(parents=True)  # a stray `torch` directory without dist-info
    (cpu.site / "torch" / "__init__.py").write_text("")
    system = System(environ=dict(cpu.env), ascend_root=cpu.root, dev_dir=cpu.dev, python=str(bare / "bin" / "python"))
    result = CHECKS["frameworks"](system)
    assert result.status == "fail"
    assert "neither torch nor mindspore" in result.evidence
    assert "`torch` module without dist-info" in result.evidence


# --------------------------------------------------------------------------- CANN
def test_cann_toolkit_missing_with_torch_npu_installed(npu):
    for name in ("ASCEND_HOME_PATH", "ASCEND_OPP_PATH"):
        npu.env.pop(name)
    import shutil
    shutil.rmtree(npu.root / "ascend-toolkit")
    result = npu.run("cann-toolkit")
    assert result.status == "fail" and "no ascend_toolkit_install.info" in result.evidence
    assert "make build-npu" in result.fix


def test_cann_version_outside_the_table_warns(tmp_path, npu):
    fakes.fake_ascend_root(npu.root, cann="7.0.0")
    result = npu.run("cann-toolkit")
    assert result.status == "warn" and "CANN 7.0.0" in result.evidence and "8.0.RC3" in result.evidence


def test_set_env_not_sourced(npu):
    for name in ("ASCEND_HOME_PATH", "ASCEND_OPP_PATH", "ASCEND_TOOLKIT_HOME", "LD_LIBRARY_PATH"):
        npu.env.pop(name)
    env_result, libs_result = npu.run("cann-env"), npu.run("cann-libs")
    assert env_result.status == "fail"
    assert env_result.evidence == "ASCEND_HOME_PATH and ASCEND_OPP_PATH unset: set_env.sh was not sourced"
    assert SET_ENV in env_result.fix
    assert libs_result.status == "fail"
    assert "libhccl.so, libascendcl.so not in any LD_LIBRARY_PATH directory" in libs_result.evidence
    assert SET_ENV in libs_result.fix


def test_libhccl_import_error_is_diagnosed_from_torch_npu_text(npu):
    fakes.fake_torch_npu(npu.site, "libhccl")
    result = npu.run("cann-libs")
    assert result.status == "fail"
    assert "libhccl.so: cannot open shared object file" in result.evidence
    assert result.fix == f"`{SET_ENV}`"
    assert npu.run("torch-npu-exit").status == "ok"  # an ImportError, not an exit


def test_libhccl_then_sys_exit(npu):
    fakes.fake_torch_npu(npu.site, "libhccl-exit")
    system = npu.system()
    exit_result, libs_result = CHECKS["torch-npu-exit"](system), CHECKS["cann-libs"](system)
    assert exit_result.status == "fail"
    assert "ended the process: exit code None" in exit_result.evidence
    assert "libhccl.so" in exit_result.evidence
    assert "python -c 'import torch_npu'" in exit_result.fix
    assert libs_result.status == "fail"


def test_segfault_in_torch_npu_import_is_survived(npu):
    fakes.fake_torch_npu(npu.site, "segfault")
    result = npu.run("torch-npu-exit")
    assert result.status == "fail" and "died with exit status -11" in result.evidence
    assert npu.run("accelerator").status == "fail"


def test_missing_cann_python_deps(npu):
    import shutil
    shutil.rmtree(npu.site / "decorator")
    shutil.rmtree(npu.site / "cffi")
    result = npu.run("cann-python-deps")
    assert result.status == "fail" and result.evidence == "not importable: decorator, cffi"
    assert result.fix.startswith("`pip install decorator cffi`")


def test_eh9999_caused_by_missing_dependency(npu):
    fakes.fake_torch_npu(npu.site, "ok", touch="eh9999-deps")
    system = npu.system()
    deps, cann = CHECKS["cann-python-deps"](system), CHECKS["torch-npu-cann"](system)
    assert deps.status == "fail" and "No module named 'decorator'" in deps.evidence
    assert "pip install decorator sympy cffi protobuf attrs" in deps.fix
    assert cann.status == "n/a"  # not blamed on a CANN mismatch


# --------------------------------------------------------------------------- driver and devices
def test_driver_not_mounted(npu):
    import shutil
    shutil.rmtree(npu.root / "driver")
    result = npu.run("driver-libs")
    assert result.status == "fail"
    assert "libascend_hal.so not under" in result.evidence and "version.info missing" in result.evidence
    assert "-v /usr/local/Ascend/driver/lib64/:/usr/local/Ascend/driver/lib64/" in result.fix


def test_libascend_hal_import_error(npu):
    fakes.fake_torch_npu(npu.site, "libascend-hal")
    result = npu.run("driver-libs")
    assert result.status == "fail" and "libascend_hal.so: cannot open shared object file" in result.evidence


def test_no_davinci_device_nodes(npu):
    for node in npu.dev.iterdir():
        node.unlink()
    result = npu.run("driver-devices")
    assert result.status == "fail" and "davinci<N>" in result.evidence
    assert "--device /dev/davinci0 --device /dev/davinci_manager" in result.fix


def test_davinci_manager_missing(npu):
    (npu.dev / "davinci_manager").unlink()
    result = npu.run("driver-devices")
    assert result.status == "fail" and result.evidence.startswith("davinci_manager missing")


def test_npu_smi_missing(npu):
    (npu.bin / "npu-smi").unlink()
    result = npu.run("npu-smi")
    assert result.status == "fail" and result.evidence == "npu-smi not on PATH"
    assert "-v /usr/local/bin/npu-smi:/usr/local/bin/npu-smi" in result.fix


def test_npu_smi_failing(npu):
    fakes.fake_tool(npu.bin, "npu-smi", "dcmi module initialize failed. ret is -8005\n", exit_code=255)
    result = npu.run("npu-smi")
    assert result.status == "fail" and "exit 255" in result.evidence and "dcmi module initialize" in result.evidence


def test_npu_health_warning(npu):
    fakes.fake_npu_smi(npu.bin, "warning_busy_910b3.txt")
    result = npu.run("npu-smi")
    assert result.status == "warn"
    assert "NPU 1.0 910B3 Warning" in result.evidence and "HBM 41022/65536 MB" in result.evidence
    assert "npu-smi info -t health -i 1" in result.fix


@pytest.mark.parametrize("fixture", ["npu_smi_22_narrow.txt", "a3_dual_chip.txt"])
def test_npu_smi_other_layouts_are_read(npu, fixture):
    fakes.fake_npu_smi(npu.bin, fixture)
    result = npu.run("npu-smi")
    assert result.status == "ok" and result.evidence.count("NPU ") == 2


# --------------------------------------------------------------------------- versions
def test_torch_npu_not_in_the_table_for_this_cann(npu):
    fakes.fake_torch_npu(npu.site, "ok", version="2.1.0.post6")  # the CANN 8.0.RC2 build
    result = npu.run("versions-table")
    assert result.status == "fail"
    assert "torch 2.1.0, torch_npu 2.1.0.post6, CANN 8.0.RC3" in result.evidence
    assert result.fix.startswith("`pip install torch==2.1.0 torch_npu==2.1.0.post8` (CANN 8.0.RC3")


def test_torch_not_in_the_table_beside_the_right_torch_npu_and_cann(npu):
    # torch_npu 2.1.0.post8 and CANN 8.0.RC3 are a row; torch 2.3.1 is not in that row
    fakes.fake_torch(npu.site, "2.3.1")
    assert [p.name for p in npu.site.glob("torch-*.dist-info")] == ["torch-2.3.1.dist-info"]  # replaced, as pip does
    result = npu.run("versions-table")
    assert result.id == "versions-table" and result.status == "fail"
    assert "torch 2.3.1, torch_npu 2.1.0.post8, CANN 8.0.RC3" in result.evidence
    assert result.fix.startswith("`pip install torch==2.3.1 torch_npu==2.3.1.post2` (CANN 8.0.RC3")


def test_versions_table_needs_torch_npu_or_cann(cpu):
    result = cpu.run("versions-table")
    assert (result.id, result.status, result.evidence) == (
        "versions-table", "n/a", "no torch_npu and no CANN: nothing to match")


def test_torch_npu_without_a_cann_toolkit_is_not_in_the_table(npu):
    shutil.rmtree(npu.root / "ascend-toolkit")   # driver only: the toolkit was never installed
    result = npu.run("versions-table")
    assert result.status == "fail" and "torch 2.1.0, torch_npu 2.1.0.post8, CANN None" in result.evidence


def test_a_missing_version_table_is_a_warning_with_its_fix(npu, monkeypatch):
    monkeypatch.setenv("KIT_VERSIONS_TOML", str(npu.tmp / "nowhere" / "versions.toml"))
    result = npu.run("versions-table")
    assert (result.id, result.status, result.evidence) == (
        "versions-table", "warn", "version table (docker/versions.toml) not found")
    assert result.fix == "run from a kit checkout or image, or set KIT_VERSIONS_TOML"


@pytest.mark.parametrize(("torch", "cann", "fix"), [
    ("2.1.0", "8.0.0", "`pip install torch==2.1.0 torch_npu==2.1.0.post10` (CANN 8.0.0"),   # this CANN's own row
    ("2.2.0", "8.0.RC3", "`pip install torch==2.1.0 torch_npu==2.1.0.post8` (CANN 8.0.RC3"),  # no row has torch 2.2
])
def test_the_fix_names_a_row_of_the_installed_cann(npu, torch, cann, fix):
    fakes.fake_torch(npu.site, torch)
    fakes.fake_ascend_root(npu.root, cann=cann)
    result = npu.run("versions-table")
    assert result.status == "fail" and f"torch {torch}, torch_npu 2.1.0.post8, CANN {cann}" in result.evidence
    assert result.fix.startswith(fix)


def test_a_local_build_label_does_not_change_the_torch_version(npu):
    fakes.fake_torch(npu.site, "2.1.0+cpu")   # torch_npu's x86_64 wheel needs the +cpu build
    result = npu.run("versions-table")
    assert result.status == "ok" and result.evidence.startswith("torch 2.1.0, torch_npu 2.1.0.post8")


def test_driver_other_than_the_tables_warns(npu):
    fakes.fake_ascend_root(npu.root, driver="23.0.0")
    result = npu.run("versions-table")
    assert result.id == "versions-table"
    assert result.fix == "install Ascend HDK 24.1.RC3 (driver + firmware) on the host"
    assert result.status == "warn" and "driver 23.0.0" in result.evidence
    assert "HDK 24.1.RC3" in result.fix


def test_undefined_symbol_means_torch_mismatch(npu):
    fakes.fake_torch_npu(npu.site, "undefined-symbol")
    result = npu.run("torch-npu-abi")
    assert result.status == "fail" and "libtorch_npu.so: undefined symbol: _ZNK3c10" in result.evidence
    assert "pip install torch==2.1.0 torch_npu==2.1.0.post8" in result.fix


def test_err00008_means_cann_mismatch(npu):
    fakes.fake_torch_npu(npu.site, "ok", touch="err00008")
    result = npu.run("torch-npu-cann")
    assert result.status == "fail" and "ERR00008 PTA resource not found" in result.evidence
    assert "CANN 8.0.RC3 -> torch_npu 2.1.0.post8" in result.fix
    assert npu.run("torch-npu-abi").status == "n/a"
    assert result.evidence.endswith("CANN's logs: ~/ascend/log (ASCEND_PROCESS_LOG_PATH unset)")
    npu.env["ASCEND_PROCESS_LOG_PATH"] = "/runs/npu-a/ascend-log"  # what make run-npu sets
    assert npu.run("torch-npu-cann").evidence.endswith("CANN's logs: /runs/npu-a/ascend-log")


def test_torch_25_autoloads_broken_torch_npu(npu):
    fakes.fake_torch(npu.site, "2.5.1")
    fakes.fake_torch_npu(npu.site, "libhccl", version="2.5.1")
    result = npu.run("torch-autoload")
    assert result.status == "fail"
    assert "Failed to load the backend extension: torch_npu" in result.evidence
    assert result.fix.startswith("`export TORCH_DEVICE_BACKEND_AUTOLOAD=0`")
    npu.env["TORCH_DEVICE_BACKEND_AUTOLOAD"] = "0"
    healthy = npu.run("torch-autoload")
    assert healthy.status == "ok" and "TORCH_DEVICE_BACKEND_AUTOLOAD=0" in healthy.evidence


def test_image_lock_mismatch(npu, tmp_path, monkeypatch):
    from recipe.tools import versions
    lock = tmp_path / "npu-aarch64.txt"
    lock.write_text("torch==2.1.0 \\\n    --hash=sha256:00\ntorch-npu==2.1.0.post8\nsympy==1.12\n")
    monkeypatch.setattr(versions, "lock_path", lambda image, arch, no_deps=False: lock)
    npu.env["KIT_IMAGE"] = "npu"
    result = npu.run("image-lock")
    assert result.status == "fail" and result.evidence == "sympy 1.13.3 (lock 1.12)"
    assert "make build-npu" in result.fix
    lock.write_text("torch==2.1.0\ntorch-npu==2.1.0.post8\nsympy==1.13.3\n")
    assert npu.run("image-lock").status == "ok"


# --------------------------------------------------------------------------- devices as torch sees them
def test_npus_present_but_torch_npu_sees_none(npu):
    fakes.fake_torch_npu(npu.site, "ok", npu_count=0)
    result = npu.run("accelerator")
    assert result.status == "fail" and "torch_npu sees 0 NPUs (npu-smi/dev list 1)" in result.evidence


@pytest.mark.parametrize(("value", "expected"), [
    ("", "hides every device"),
    ("3", "names id 3 but only 2 device(s) exist (0..1)"),
    ("2", "names id 2 but only 2 device(s) exist (0..1)"),   # ids count from 0: 2 is one too many
    ("GPU-8a1c2d3e,0", "expected comma-separated device ids"),   # UUIDs are CUDA's, and not mixed
    ("0,0", "repeats an id"),
    ("npu0", "expected comma-separated device ids"),
])
def test_wrong_ascend_rt_visible_devices(npu, value, expected):
    fakes.fake_npu_smi(npu.bin, "warning_busy_910b3.txt")  # two NPUs
    npu.env["ASCEND_RT_VISIBLE_DEVICES"] = value
    result = npu.run("visible-devices")
    assert result.status == "fail" and expected in result.evidence
    assert "export ASCEND_RT_VISIBLE_DEVICES=0,1" in result.fix


def test_valid_visible_devices(npu):
    fakes.fake_npu_smi(npu.bin, "warning_busy_910b3.txt")
    npu.env["ASCEND_RT_VISIBLE_DEVICES"] = "1,0"
    result = npu.run("visible-devices")
    assert result.status == "ok" and "ASCEND_RT_VISIBLE_DEVICES='1,0'" in result.evidence


def test_cuda_visible_devices_by_uuid_are_accepted(gpu):
    gpu.env["CUDA_VISIBLE_DEVICES"] = "GPU-8a1c2d3e-0000-1111-2222-333344445555, MIG-1f2e3d4c"
    result = gpu.run("visible-devices")
    assert result.status == "ok"


def test_cuda_visible_devices_hides_the_gpu(gpu):
    gpu.env["CUDA_VISIBLE_DEVICES"] = "-1"
    result = gpu.run("visible-devices")
    assert result.status == "fail" and "CUDA_VISIBLE_DEVICES='-1' hides every device" in result.evidence


def test_gpu_present_but_cuda_unavailable(gpu):
    fakes.fake_torch(gpu.site, "2.1.0", cuda="12.1", cuda_available=False)
    result = gpu.run("accelerator")
    assert result.status == "fail" and "torch.cuda.is_available() is False with 1 GPU(s)" in result.evidence


# --------------------------------------------------------------------------- CUDA driver
def test_cuda_driver_too_old(gpu):
    warning = ("CUDA initialization: The NVIDIA driver on your system is too old (found version 11040). "
               "Please update your GPU driver")
    fakes.fake_nvidia_smi(gpu.bin, "NVIDIA A100-SXM4-80GB, 0, 81920, 470.182.03\n")
    fakes.fake_torch(gpu.site, "2.1.0", cuda="12.1", cuda_available=False, cuda_warning=warning)
    result = gpu.run("cuda-driver")
    assert result.status == "fail"
    assert "driver 470.182.03, torch 2.1.0 built for CUDA 12.1: needs >= 525.60.13" in result.evidence
    assert "driver on your system is too old" in result.evidence
    assert result.fix.startswith("upgrade the host NVIDIA driver to >= 530.30.02")


def test_cuda_driver_through_minor_version_compatibility_warns(gpu):
    fakes.fake_nvidia_smi(gpu.bin, "NVIDIA A100-SXM4-80GB, 0, 81920, 525.125.06\n")
    result = gpu.run("cuda-driver")
    assert result.status == "warn" and "CUDA 12.1 shipped with 530.30.02" in result.evidence


@pytest.mark.parametrize(("driver", "status", "evidence"), [
    ("520.61.05", "fail", "built for CUDA 12.1: needs >= 525.60.13"),   # below CUDA 12's minimum, no torch warning
    ("525.60.13", "warn", "CUDA 12.1 shipped with 530.30.02"),          # exactly the minimum: runs
    ("530.30.02", "ok", "driver 530.30.02, torch 2.1.0 built for CUDA 12.1"),   # exactly 12.1's own driver
])
def test_cuda_driver_boundaries(gpu, driver, status, evidence):
    fakes.fake_nvidia_smi(gpu.bin, f"NVIDIA A100-SXM4-80GB, 0, 81920, {driver}\n")
    result = gpu.run("cuda-driver")
    assert result.id == "cuda-driver" and result.status == status and evidence in result.evidence
    if status == "fail":
        assert result.evidence.endswith("needs >= 525.60.13")   # no torch warning to quote
    if status == "warn":
        assert result.fix == "upgrade the host NVIDIA driver to >= 530.30.02 if kernels fail to JIT"
    if status == "fail":
        assert result.fix.startswith("upgrade the host NVIDIA driver to >= 530.30.02 (CUDA 12.1)")


# --------------------------------------------------------------------------- tracking, multi-card, openmind
def test_swanlab_cloud_without_key_or_tty(cpu):
    fakes.write_dist(cpu.site, "swanlab", "0.10.3", package="swanlab")
    cpu.env["SWANLAB_MODE"] = "cloud"
    result = cpu.run("swanlab-cloud")
    assert result.status == "fail" and "no saved login and stdin is not a TTY" in result.evidence
    assert "export SWANLAB_MODE=offline" in result.fix


def test_swanlab_key_is_never_shown(cpu):
    fakes.write_dist(cpu.site, "swanlab", "0.10.3", package="swanlab")
    cpu.env.update(SWANLAB_MODE="cloud", SWANLAB_API_KEY="sk-very-secret-42")
    result = cpu.run("swanlab-cloud")
    assert result.status == "ok" and "value hidden" in result.evidence
    assert "sk-very-secret-42" not in str(result.as_dict())


def test_swanlab_saved_login_counts(cpu):
    fakes.write_dist(cpu.site, "swanlab", "0.10.3", package="swanlab")
    (cpu.home / ".swanlab").mkdir(parents=True)
    (cpu.home / ".swanlab" / ".netrc").write_text("machine api.swanlab.cn\n  login user\n  password x\n")
    cpu.env["SWANLAB_MODE"] = "cloud"
    assert cpu.run("swanlab-cloud").status == "ok"


def test_hccl_timeouts_on_multi_card(npu):
    fakes.fake_npu_smi(npu.bin, "warning_busy_910b3.txt")
    result = npu.run("hccl-timeouts")
    assert result.status == "warn" and result.evidence.startswith("2 NPUs, defaults (120 s / 1800 s)")
    assert result.fix == "`export HCCL_CONNECT_TIMEOUT=1200 HCCL_EXEC_TIMEOUT=1800`"
    npu.env["HCCL_EXEC_TIMEOUT"] = "30min"
    bad = npu.run("hccl-timeouts")
    assert bad.status == "fail" and "HCCL_EXEC_TIMEOUT='30min' is not whole seconds" in bad.evidence
    npu.env.update(HCCL_CONNECT_TIMEOUT="1200", HCCL_EXEC_TIMEOUT="1800")
    assert npu.run("hccl-timeouts").status == "ok"
    npu.env["ASCEND_RT_VISIBLE_DEVICES"] = "1"  # one card: timeouts do not matter
    npu.env.pop("HCCL_CONNECT_TIMEOUT")
    assert npu.run("hccl-timeouts").status == "n/a"


def test_openmind_hides_tracebacks(cpu):
    fakes.write_dist(cpu.site, "openmind", "0.9.1", package="openmind")
    result = cpu.run("openmind-traceback")
    assert result.status == "warn" and "OPENMIND_HIDE_STACKTRACE=unset" in result.evidence
    assert result.fix == "`export OPENMIND_HIDE_STACKTRACE=FALSE` while debugging"
    cpu.env["OPENMIND_HIDE_STACKTRACE"] = "false"
    assert cpu.run("openmind-traceback").status == "ok"


def test_every_catalogue_entry_has_a_test_here():
    source = Path(__file__).read_text()
    untested = [e.id for e in CATALOGUE if f'run("{e.id}")' not in source and f'CHECKS["{e.id}"]' not in source]
    assert not untested


def test_cuda_visible_devices_are_range_checked_too(gpu):
    gpu.env["CUDA_VISIBLE_DEVICES"] = "1"   # one GPU: only id 0 exists
    result = gpu.run("visible-devices")
    assert result.status == "fail" and "CUDA_VISIBLE_DEVICES='1' names id 1 but only 1 device(s) exist" in result.evidence


def test_ascend_devices_are_never_uuids(npu):
    npu.env["ASCEND_RT_VISIBLE_DEVICES"] = "GPU-8a1c2d3e"
    result = npu.run("visible-devices")
    assert result.status == "fail" and "expected comma-separated device ids like 0,1" in result.evidence


def test_a_check_that_crashes_is_its_own_failure_and_the_others_still_run(cpu, monkeypatch):
    from verify import checks

    def broken(system):
        raise KeyError("no such field")
    monkeypatch.setitem(checks.CHECKS, "swanlab-cloud", broken)
    results = {r.id: r for r in run_all(cpu.system(), ["swanlab-cloud", "hccl-timeouts"])}
    crashed = results["swanlab-cloud"]
    assert (crashed.status, crashed.evidence) == ("fail", "the check itself crashed: KeyError: 'no such field'")
    assert crashed.fix == "report this as a kit bug (tests/test_doctor*.py)"
    assert results["hccl-timeouts"].status != "fail"


def test_cuda_driver_is_not_judged_without_a_driver(cpu):
    fakes.fake_torch(cpu.site, "2.1.0")
    result = cpu.run("cuda-driver")
    assert (result.id, result.status, result.evidence) == ("cuda-driver", "n/a", "no NVIDIA driver (nvidia-smi) here")


def test_cuda_driver_is_not_judged_without_a_cuda_torch(gpu):
    fakes.fake_torch(gpu.site, "2.1.0+cpu", cuda=None)
    result = gpu.run("cuda-driver")
    assert (result.id, result.status, result.evidence) == (
        "cuda-driver", "n/a", "driver 535.104.05; torch here is not a CUDA build (2.1.0+cpu)")
    fakes.write_dist(gpu.site, "torch", "2.1.0", package="torch",
                     init='raise ImportError("libtorch_cuda.so: cannot open shared object file")\n')
    result = gpu.run("cuda-driver")
    assert result.status == "n/a" and "libtorch_cuda.so: cannot open shared object file" in result.evidence


# --- the probe's failure reading (verify/probes.py), on the texts the real stack prints

AUTOLOAD = ("RuntimeError: Failed to load the backend extension: torch_npu. You can disable extension "
            "auto-loading with TORCH_DEVICE_BACKEND_AUTOLOAD=0.")


def test_failure_text_joins_what_the_probe_said_and_skips_what_it_did_not():
    assert probes.failure_text({"message": "m", "output": "o", "traceback": "t"}) == "m\no\nt"
    assert probes.failure_text({"message": "m", "traceback": "t"}) == "m\nt"
    assert probes.failure_text({"message": None, "output": "", "traceback": "t"}) == "t"
    assert probes.failure_text({}) == ""


@pytest.mark.parametrize("where", ["message", "output", "traceback"])
def test_diagnose_reads_the_signature_wherever_the_probe_put_it(where):
    assert probes.diagnose({"ok": False, where: f"line before\n{AUTOLOAD}"}) == ["autoload"]


def test_diagnose_says_nothing_for_a_working_probe_and_other_for_an_unknown_failure():
    assert probes.diagnose({"ok": True, "message": AUTOLOAD}) == []
    assert probes.diagnose({"ok": False, "message": "something new"}) == ["other"]
    assert probes.diagnose({"ok": False, "error": "SystemExit", "message": "exit code 1"}) == ["exit"]
    assert probes.diagnose({"ok": False, "crashed": True, "output": "undefined symbol: _ZN3c10"}) == ["torch-abi", "exit"]


def test_first_line_is_the_first_non_blank_line_cut_to_the_limit():
    assert probes.first_line("\n  \n  first  \nsecond") == "first"
    assert probes.first_line(" \n\n") == ""
    exact = "x" * 160
    assert probes.first_line(exact) == exact                       # at the limit: whole
    cut = probes.first_line("y" * 161)
    assert cut == "y" * 159 + "…" and len(cut) == 160              # over it: limit characters, ellipsis included
    assert probes.first_line("z" * 20, limit=10) == "z" * 9 + "…"


def test_key_line_picks_the_signature_line_over_the_message_and_keeps_the_limit():
    result = {"ok": False, "message": "import failed", "output": f"noise\n  {AUTOLOAD}  \nmore noise"}
    assert probes.key_line(result) == AUTOLOAD
    assert probes.key_line(result, 30) == AUTOLOAD[:29] + "…"
    assert probes.key_line({"message": "x" * 160, "output": "undefined symbol " + "s" * 200})[-1] == "…"
    assert len(probes.key_line({"output": "undefined symbol " + "s" * 200})) == 160
    exact = "undefined symbol " + "s" * 143
    assert probes.key_line({"output": exact}) == exact                # at the limit: whole
    assert probes.key_line({"message": "  ", "output": "the real news"}) == "the real news"
    assert probes.key_line({"output": "libascend_hal.so: cannot open"}) == "libascend_hal.so: cannot open"
    # no signature: the message's first line, else the first line of everything it said
    assert probes.key_line({"message": "\nfirst of message\nsecond", "output": "out"}) == "first of message"
    assert probes.key_line({"message": "", "output": "\nfirst of output"}) == "first of output"
    assert probes.key_line({"message": "m" * 50}, 20) == "m" * 19 + "…"
