"""Faithful fakes of what this machine does not have (reusable by every test).

- `site` packages on a PYTHONPATH: a `mindspore` distribution (package + dist-info, so openMind's
  find_spec + importlib.metadata rule counts it), a `torch_npu` whose import raises the real error
  texts or ends in SystemExit / a segfault, a `torch` that auto-loads device backends like torch >= 2.5.
- an Ascend install tree (ascend_toolkit_install.info, driver/version.info, set_env.sh, the libraries)
  and the environment `source set_env.sh` would give;
- /dev nodes (davinci*, davinci_manager, ...) as plain files;
- `npu-smi` / `nvidia-smi` executables printing recorded text (tests/fakes/npu_smi/*.txt).

Never install the real torch_npu here: it breaks `import torch`.
"""

from __future__ import annotations

import os
import shutil
import stat
import textwrap
from pathlib import Path

NPU_SMI_DIR = Path(__file__).parent / "npu_smi"

# Error texts as torch_npu / CANN print them (shared/reference/ascend-stack.md).
LIBHCCL_ERROR = ("libhccl.so: cannot open shared object file: No such file or directory. Please check that the "
                 "cann package is installed. Please run 'source set_env.sh' in the CANN installation path.")
LIBASCEND_HAL_ERROR = "libascend_hal.so: cannot open shared object file: No such file or directory"
UNDEFINED_SYMBOL_ERROR = ("/usr/local/python3.10.14/lib/python3.10/site-packages/torch_npu/lib/libtorch_npu.so: "
                          "undefined symbol: _ZNK3c1010TensorImpl36is_contiguous_nondefault_policy_implENS_12MemoryFormatE")
ERR00008_ERROR = ("Initialize:build/CMakeFiles/torch_npu.dir/compiler_depend.ts:217 NPU function error: "
                  "c10_npu::acl::AclrtSetDevice(device_id_), error code is 507899\n"
                  "[ERROR] 2026-11-27-19:30:00 (PID:4242, Device:0, RankID:-1) ERR00008 PTA resource not found")
EH9999_DEPS_ERROR = ("No module named 'decorator'\n"
                     "EH9999: Inner Error!\nEH9999  [Init][Env]init env failed!")
AUTOLOAD_ERROR = ("Failed to load the backend extension: torch_npu. You can disable extension auto-loading "
                  "with TORCH_DEVICE_BACKEND_AUTOLOAD=0.")

# What `import torch_npu` does in each fake state.
TORCH_NPU_BEHAVIOURS = {
    "ok": "",
    "libhccl": f"raise ImportError({LIBHCCL_ERROR!r})",
    "libhccl-exit": f"print({LIBHCCL_ERROR!r}, file=sys.stderr)\nsys.exit()",
    "libascend-hal": f"raise ImportError({LIBASCEND_HAL_ERROR!r})",
    "undefined-symbol": f"raise ImportError({UNDEFINED_SYMBOL_ERROR!r})",
    "segfault": "import signal\nos.kill(os.getpid(), signal.SIGSEGV)",
    # CANN writes its process log as soon as torch_npu loads the ACL libraries: a plog file under
    # $ASCEND_PROCESS_LOG_PATH/debug/plog/ (plog-<pid>_<time>.log). Then, like the real module, it
    # registers torch.npu (here with no card: is_available() is False unless npu_count > 0).
    "plog": "import time\n"
            "log = os.path.join(os.environ.get('ASCEND_PROCESS_LOG_PATH', os.path.expanduser('~/ascend/log')), "
            "'debug', 'plog')\n"
            "os.makedirs(log, exist_ok=True)\n"
            "with open(os.path.join(log, f'plog-{os.getpid()}_{time.strftime(\"%Y%m%d%H%M%S\")}000.log'), 'a') as f:\n"
            "    f.write(f'[INFO] ASCENDCL({os.getpid()},python):aclInit\\n')\n",
}
# Failures at the first NPU touch (set_device), after a clean import.
TORCH_NPU_TOUCH_FAILURES = {
    "err00008": f"raise RuntimeError({ERR00008_ERROR!r})",
    "eh9999-deps": f"raise RuntimeError({EH9999_DEPS_ERROR!r})",
}


def write_dist(site: Path, name: str, version: str, package: str | None = None, init: str = "",
               entry_points: str | None = None) -> Path:
    """A distribution as pip leaves it: <package>/__init__.py plus <name>-<version>.dist-info."""
    site.mkdir(parents=True, exist_ok=True)
    if package is not None:
        (site / package).mkdir(parents=True, exist_ok=True)
        (site / package / "__init__.py").write_text(init)
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    for old in site.glob(f"{name.replace('-', '_')}-*.dist-info"):   # pip replaces, never adds a 2nd version
        if old != info:
            shutil.rmtree(old)
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (info / "RECORD").write_text("")
    if entry_points:
        (info / "entry_points.txt").write_text(entry_points)
    return info


def fake_mindspore(site: Path, version: str = "2.4.0", dist_info: bool = True) -> None:
    """mindspore as installed by pip (dist_info=False: a stray directory openMind does not count)."""
    if dist_info:
        write_dist(site, "mindspore", version, package="mindspore", init=f"__version__ = {version!r}\n")
    else:
        (site / "mindspore").mkdir(parents=True, exist_ok=True)
        (site / "mindspore" / "__init__.py").write_text("")


def fake_torch(site: Path, version: str = "2.1.0", cuda: str | None = None, cuda_available: bool = False,
               cuda_warning: str | None = None) -> None:
    """A light torch: version, torch.version.cuda, torch.cuda, and (>= 2.5) backend auto-loading
    through the `torch.backends` entry points, with torch's own error text."""
    init = textwrap.dedent(f"""\
        import os, warnings
        __version__ = {version!r}
        class version:
            cuda = {cuda!r}
        class cuda:
            @staticmethod
            def is_available():
                if {cuda_warning!r}:
                    warnings.warn({cuda_warning!r})
                return {cuda_available!r}
            @staticmethod
            def device_count():
                return 1 if {cuda_available!r} else 0

        def _import_device_backends():
            from importlib.metadata import entry_points
            for backend in entry_points(group="torch.backends"):
                try:
                    backend.load()()
                except Exception as err:
                    raise RuntimeError(
                        f"Failed to load the backend extension: {{backend.name}}. You can disable extension "
                        "auto-loading with TORCH_DEVICE_BACKEND_AUTOLOAD=0.") from err

        if tuple(int(p) for p in __version__.split("+")[0].split(".")[:2]) >= (2, 5) and \\
                os.getenv("TORCH_DEVICE_BACKEND_AUTOLOAD", "1") == "1":
            _import_device_backends()
        """)
    write_dist(site, "torch", version, package="torch", init=init)


def fake_torch_npu(site: Path, behaviour: str = "ok", version: str = "2.1.0.post8", npu_count: int = 1,
                   touch: str | None = None) -> None:
    """torch_npu whose import does `behaviour` (TORCH_NPU_BEHAVIOURS) and whose first NPU touch
    does `touch` (TORCH_NPU_TOUCH_FAILURES). Registers the torch >= 2.5 backend entry point."""
    on_import = TORCH_NPU_BEHAVIOURS[behaviour]
    on_touch = TORCH_NPU_TOUCH_FAILURES[touch] if touch else "pass"
    init = "import os, sys\n" + on_import + "\n" + textwrap.dedent(f"""\
        __version__ = {version!r}
        class npu:
            @staticmethod
            def device_count():
                return {npu_count}
            @staticmethod
            def set_device(index):
                {on_touch}
            @staticmethod
            def synchronize():
                pass
            @staticmethod
            def get_device_name(index):
                return "Ascend910B3"
            @staticmethod
            def is_available():
                return {npu_count} > 0
        def _autoload():
            pass
        """) + ("import torch\ntorch.npu = npu\n" if behaviour == "plog" else "")
    write_dist(site, "torch_npu", version, package="torch_npu", init=init,
               entry_points="[torch.backends]\ntorch_npu = torch_npu:_autoload\n")


def fake_ascend_root(root: Path, cann: str | None = "8.0.RC3", driver: str | None = "24.1.rc3",
                     arch: str = "aarch64", cann_libs: bool = True, driver_libs: bool = True) -> Path:
    """/usr/local/Ascend with the toolkit (cann=None: none) and the driver files (driver=None: none)."""
    if cann:
        home = root / "ascend-toolkit" / "latest"
        (home / f"{arch}-linux").mkdir(parents=True, exist_ok=True)
        (home / f"{arch}-linux" / "ascend_toolkit_install.info").write_text(
            f"package_name=Ascend-cann-toolkit\nversion={cann}\ninnerversion=V100R001C19SPC001B155\n"
            f"arch={arch}\nos=linux\npath={root}/ascend-toolkit/{cann}/{arch}-linux\n")
        (home / "opp").mkdir(exist_ok=True)
        (home / "lib64").mkdir(exist_ok=True)
        if cann_libs:
            for lib in ("libhccl.so", "libascendcl.so"):
                (home / "lib64" / lib).write_bytes(b"\x7fELF")
        (root / "ascend-toolkit" / "set_env.sh").write_text(
            f"export ASCEND_TOOLKIT_HOME={home}\nexport ASCEND_HOME_PATH={home}\n")
    if driver:
        drv = root / "driver"
        (drv / "lib64" / "driver").mkdir(parents=True, exist_ok=True)
        (drv / "lib64" / "common").mkdir(parents=True, exist_ok=True)
        (drv / "version.info").write_text(
            f"Version={driver}\nascendhal_version=7.35.23\nInnerversion=V100R001C19SPC001B124\n"
            f"package_version={driver}\n")
        if driver_libs:
            (drv / "lib64" / "driver" / "libascend_hal.so").write_bytes(b"\x7fELF")
    return root


def sourced_env(root: Path) -> dict[str, str]:
    """The variables `source <root>/ascend-toolkit/set_env.sh` sets (the ones the doctor reads)."""
    home = root / "ascend-toolkit" / "latest"
    return {
        "ASCEND_TOOLKIT_HOME": str(home), "ASCEND_HOME_PATH": str(home), "ASCEND_OPP_PATH": str(home / "opp"),
        "ASCEND_AICPU_PATH": str(home),
        "LD_LIBRARY_PATH": ":".join(str(p) for p in (
            root / "driver" / "lib64" / "common", root / "driver" / "lib64" / "driver", home / "lib64")),
    }


def fake_dev(dev: Path, npus: int = 1, controls: bool = True, gpus: int = 0) -> Path:
    dev.mkdir(parents=True, exist_ok=True)
    names = [f"davinci{i}" for i in range(npus)] + [f"nvidia{i}" for i in range(gpus)]
    if controls and npus:
        names += ["davinci_manager", "devmm_svm", "hisi_hdc"]
    for name in names:
        (dev / name).touch()
    return dev


def fake_tool(bindir: Path, name: str, output: str, exit_code: int = 0) -> Path:
    """An executable `name` that prints `output` and exits with `exit_code` (any arguments)."""
    bindir.mkdir(parents=True, exist_ok=True)
    text_file = bindir / f".{name}.out"
    text_file.write_text(output)
    tool = bindir / name
    tool.write_text(f"#!/bin/sh\n/bin/cat '{text_file}'\nexit {exit_code}\n")
    tool.chmod(tool.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return tool


def fake_npu_smi(bindir: Path, fixture: str = "healthy_910b4.txt", exit_code: int = 0) -> Path:
    return fake_tool(bindir, "npu-smi", (NPU_SMI_DIR / fixture).read_text(), exit_code)


def fake_nvidia_smi(bindir: Path, csv: str = "NVIDIA A100-SXM4-80GB, 2551, 81920, 535.104.05\n",
                    exit_code: int = 0) -> Path:
    return fake_tool(bindir, "nvidia-smi", csv, exit_code)


def base_environ(bindir: Path, site: Path | None = None) -> dict[str, str]:
    """A clean environment: PATH is only the fake bin dir (a real npu-smi/nvidia-smi must not leak in)."""
    bindir.mkdir(parents=True, exist_ok=True)
    env = {"PATH": str(bindir), "HOME": str(bindir.parent / "home"), "LANG": "C.UTF-8"}
    if site is not None:
        env["PYTHONPATH"] = str(site)
    for keep in ("SYSTEMROOT", "TMPDIR"):
        if keep in os.environ:
            env[keep] = os.environ[keep]
    return env
