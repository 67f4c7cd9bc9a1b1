"""What the doctor looks at, gathered once per run: files of the Ascend install, device nodes,
environment variables, the device tools' output and (through subprocess probes) the Python side.

Everything is reached through a `System`, whose roots and environment tests replace with fakes:
KIT_ASCEND_ROOT (default /usr/local/Ascend), KIT_DEV_DIR (default /dev), the PATH in `environ`
(fake npu-smi / nvidia-smi) and the PYTHONPATH in `environ` (fake torch_npu, fake mindspore).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from recipe.tools.smi import (
    NVIDIA_SMI_QUERY,
    cann_install_info,
    driver_version,
    npu_smi_version,
    parse_npu_smi_info,
    parse_nvidia_smi_csv,
    read_key_values,
)
from verify import probes

DEFAULT_ASCEND_ROOT = Path("/usr/local/Ascend")
SET_ENV = "/usr/local/Ascend/ascend-toolkit/set_env.sh"
TOOL_TIMEOUT_S = 20


@dataclass
class ToolRun:
    """One run of an external tool: found on PATH or not, exit status and text."""

    path: str | None
    returncode: int | None = None
    output: str = ""

    @property
    def ran_ok(self) -> bool:
        return self.path is not None and self.returncode == 0


@dataclass
class System:
    environ: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    ascend_root: Path | None = None
    dev_dir: Path | None = None
    python: str = sys.executable
    stdin_isatty: bool | None = None
    home: Path | None = None

    def __post_init__(self):
        self.ascend_root = Path(self.ascend_root or self.environ.get("KIT_ASCEND_ROOT") or DEFAULT_ASCEND_ROOT)
        self.dev_dir = Path(self.dev_dir or self.environ.get("KIT_DEV_DIR") or "/dev")
        self.home = Path(self.home or self.environ.get("HOME") or Path.home())
        if self.stdin_isatty is None:
            self.stdin_isatty = sys.stdin is not None and sys.stdin.isatty()

    # ------------------------------------------------------------------ Ascend files
    @property
    def toolkit_home(self) -> Path | None:
        """ASCEND_HOME_PATH when set_env.sh was sourced, else the default install location."""
        sourced = self.environ.get("ASCEND_HOME_PATH")
        if sourced:
            return Path(sourced)
        default = self.ascend_root / "ascend-toolkit" / "latest"
        return default if default.exists() else None

    @cached_property
    def toolkit_info_file(self) -> Path | None:
        """<home>/<arch>-linux/ascend_toolkit_install.info (as torch_npu's collect_env looks it up)."""
        home = self.toolkit_home
        return cann_install_info(home) if home else None

    @cached_property
    def cann_version(self) -> str | None:
        info = self.toolkit_info_file
        return read_key_values(info).get("version") if info else None

    @property
    def driver_dir(self) -> Path:
        return self.ascend_root / "driver"

    @cached_property
    def driver_version(self) -> str | None:
        return driver_version(self.driver_dir / "version.info")

    def library_dirs(self) -> list[Path]:
        return [Path(p) for p in self.environ.get("LD_LIBRARY_PATH", "").split(":") if p]

    def find_library(self, name: str, extra_dirs: tuple[Path, ...] = ()) -> Path | None:
        """Where the dynamic loader would find `name` through LD_LIBRARY_PATH (plus extra_dirs)."""
        for directory in [*self.library_dirs(), *extra_dirs]:
            candidate = directory / name
            if candidate.exists():
                return candidate
        return None

    @property
    def driver_lib_dirs(self) -> tuple[Path, ...]:
        lib64 = self.driver_dir / "lib64"
        return (lib64 / "driver", lib64 / "common", lib64)

    @cached_property
    def davinci_devices(self) -> list[str]:
        if not self.dev_dir.is_dir():
            return []
        return sorted(p.name for p in self.dev_dir.iterdir() if re.fullmatch(r"davinci\d+", p.name))

    def dev_exists(self, name: str) -> bool:
        return (self.dev_dir / name).exists()

    @cached_property
    def nvidia_devices(self) -> list[str]:
        if not self.dev_dir.is_dir():
            return []
        return sorted(p.name for p in self.dev_dir.iterdir() if re.fullmatch(r"nvidia\d+", p.name))

    # ------------------------------------------------------------------ tools
    def which(self, tool: str) -> str | None:
        return shutil.which(tool, path=self.environ.get("PATH", os.defpath))

    def run_tool(self, tool: str, *args: str) -> ToolRun:
        path = self.which(tool)
        if path is None:
            return ToolRun(path=None)
        try:
            done = subprocess.run([path, *args], check=False, capture_output=True, text=True, timeout=TOOL_TIMEOUT_S,
                                  env=self.environ)
        except (OSError, subprocess.SubprocessError) as err:
            return ToolRun(path=path, returncode=None, output=str(err))
        return ToolRun(path=path, returncode=done.returncode, output=done.stdout + done.stderr)

    @cached_property
    def npu_smi(self) -> ToolRun:
        return self.run_tool("npu-smi", "info")

    @cached_property
    def npu_chips(self) -> list[dict]:
        return parse_npu_smi_info(self.npu_smi.output) if self.npu_smi.ran_ok else []

    @property
    def npu_smi_driver(self) -> str | None:
        return npu_smi_version(self.npu_smi.output) if self.npu_smi.ran_ok else None

    @cached_property
    def nvidia_smi(self) -> ToolRun:
        return self.run_tool("nvidia-smi", *NVIDIA_SMI_QUERY)

    @cached_property
    def gpus(self) -> list[dict]:
        return parse_nvidia_smi_csv(self.nvidia_smi.output) if self.nvidia_smi.ran_ok else []

    # ------------------------------------------------------------------ python side (subprocesses)
    @cached_property
    def meta(self) -> dict:
        return probes.run_probe("meta", self.python, self.environ)

    @cached_property
    def torch_probe(self) -> dict:
        return probes.run_probe("torch", self.python, self.environ)

    @cached_property
    def torch_npu_probe(self) -> dict:
        return probes.run_probe("torch_npu", self.python, self.environ)

    def dist(self, name: str) -> str | None:
        """Installed version of a distribution (PEP 503 name), as the probed interpreter sees it."""
        return self.meta.get("dists", {}).get(probes.normalize(name))

    # ------------------------------------------------------------------ what kind of machine this is
    @cached_property
    def expects_npu(self) -> bool:
        """Any sign that this environment is meant to drive an Ascend NPU."""
        return bool(self.dist("torch_npu") or self.environ.get("KIT_IMAGE") == "npu"
                    or self.ascend_root.is_dir() or self.davinci_devices or self.which("npu-smi"))

    @cached_property
    def expects_cuda(self) -> bool:
        return bool(self.environ.get("KIT_IMAGE") == "cuda" or self.which("nvidia-smi") or self.nvidia_devices)
