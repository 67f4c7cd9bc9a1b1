"""Every difference between devices (cpu / cuda / npu) and frameworks (openmind / transformers).

The recipe and the tools around it call only these functions; nothing device- or
framework-specific lives anywhere else. Differences between *versions* of one library
(TrainingArguments' renamed settings, torch 2.1's missing torch.cpu.set_device) are
recipe/compat.py's.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import os
import platform
import shutil
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from types import SimpleNamespace

import torch

from recipe import distributed, hub
from recipe.errors import ConfigError, DeviceError
from recipe.tools import smi
from recipe.tools.smi import NVIDIA_SMI_QUERY, parse_npu_smi_info, parse_nvidia_smi_csv

DEVICE_TYPES = ("cpu", "cuda", "npu")
API_CHOICES = ("auto", "openmind", "transformers")

ASCEND_DRIVER_VERSION_FILE = Path("/usr/local/Ascend/driver/version.info")


# --------------------------------------------------------------------------- device
@dataclass
class Device:
    type: str                       # cpu | cuda | npu
    name: str
    count: int = 1
    index: int = 0                  # local device index used by this process
    driver: str | None = None
    cuda: str | None = None
    cann: str | None = None

    @property
    def torch_device(self) -> str:
        return "cpu" if self.type == "cpu" else f"{self.type}:{self.index}"

    def as_record(self) -> dict:
        return asdict(self)


def import_torch_npu() -> tuple[object | None, str | None]:
    """Import torch_npu, returning (module, None) or (None, why). Never raises: a broken Ascend
    environment makes torch_npu raise ImportError, RuntimeError or even call sys.exit()."""
    if importlib.util.find_spec("torch_npu") is None:
        return None, "torch_npu is not installed"
    try:
        return importlib.import_module("torch_npu"), None
    except (ImportError, RuntimeError, OSError) as err:
        return None, f"{type(err).__name__}: {err}"
    except SystemExit as err:  # some torch_npu 2.1.x builds exit() when CANN is not sourced
        return None, f"import torch_npu called sys.exit({err.code!r}) (CANN environment not sourced?)"


def _npu_available() -> tuple[bool, str | None]:
    module, why = import_torch_npu()
    if module is None:
        return False, why
    if not torch.npu.is_available():
        return False, "torch_npu imported but torch.npu.is_available() is False (no /dev/davinci*?)"
    return True, None


def detect_device(requested: str = "auto") -> Device:
    """Pick the device: npu if torch_npu works, else cuda, else cpu; `requested` forces one."""
    if requested not in ("auto", *DEVICE_TYPES):
        raise ConfigError(f"--device {requested!r}", fix=f"use one of auto, {', '.join(DEVICE_TYPES)}")
    if requested in ("auto", "npu"):
        ok, why = _npu_available()
        if ok:
            return _npu_device()
        if requested == "npu":
            raise DeviceError(f"no usable Ascend NPU: {why}",
                              fix="run `python -m verify.doctor` (or `make doctor`) for the exact cause and fix")
    if requested in ("auto", "cuda"):
        if torch.cuda.is_available():
            return _cuda_device()
        if requested == "cuda":
            raise DeviceError("no usable CUDA GPU: torch.cuda.is_available() is False "
                              f"(torch {torch.__version__}, built for CUDA {torch.version.cuda})",
                              fix="check `nvidia-smi`, CUDA_VISIBLE_DEVICES and `docker run --gpus all`; "
                                  "`make doctor` explains more")
    return Device(type="cpu", name=platform.processor() or platform.machine(), count=1)


def _cuda_device() -> Device:
    index = distributed.local_rank() % max(torch.cuda.device_count(), 1)
    torch.cuda.set_device(index)
    sample = nvidia_smi_sample(index)
    return Device(type="cuda", name=torch.cuda.get_device_name(index), count=torch.cuda.device_count(),
                  index=index, driver=sample.get("driver") if sample else None, cuda=torch.version.cuda)


def _npu_device() -> Device:
    index = distributed.local_rank() % max(torch.npu.device_count(), 1)
    torch.npu.set_device(index)
    return Device(type="npu", name=torch.npu.get_device_name(index), count=torch.npu.device_count(),
                  index=index, driver=read_ascend_driver_version(), cann=read_cann_version())


def read_cann_version(home: str | None = None) -> str | None:
    """CANN version of the sourced toolkit (ASCEND_HOME_PATH), as torch_npu's collect_env reads it."""
    home = home or os.environ.get("ASCEND_HOME_PATH") or os.environ.get("ASCEND_TOOLKIT_HOME")
    return smi.cann_version(Path(home)) if home else None


def read_ascend_driver_version(path: Path = ASCEND_DRIVER_VERSION_FILE) -> str | None:
    return smi.driver_version(path)


def accelerator(device_type: str):
    """torch.cuda or torch.npu (same API surface for memory stats and sync), None on cpu."""
    return {"cuda": torch.cuda, "npu": getattr(torch, "npu", None)}.get(device_type)


def synchronize(device: Device) -> None:
    """Wait for queued kernels so wall-clock timings measure the work, not the launch."""
    module = accelerator(device.type)
    if module is not None:
        module.synchronize()


def reset_peak_memory(device: Device) -> None:
    module = accelerator(device.type)
    if module is not None:
        module.reset_peak_memory_stats()


def allocator_peaks_mb(device: Device) -> dict:
    """Peak memory held by torch's caching allocator (what the framework asked for / cached)."""
    module = accelerator(device.type)
    if module is None:
        return {"peak_allocated_mb": None, "peak_reserved_mb": None, "source": "none"}
    mib = 1024 * 1024
    return {"peak_allocated_mb": round(module.max_memory_allocated() / mib, 1),
            "peak_reserved_mb": round(module.max_memory_reserved() / mib, 1),
            "source": f"torch.{device.type}"}


def nvidia_smi_sample(index: int = 0) -> dict | None:
    row = _smi_row(["nvidia-smi", *NVIDIA_SMI_QUERY], parse_nvidia_smi_csv, index)
    return row and {"used_mb": row["memory_used_mb"], "total_mb": row["memory_total_mb"],
                    "driver": row.get("driver"), "tool": "nvidia-smi"}


def npu_smi_sample(index: int = 0) -> dict | None:
    """One `npu-smi info` read: HBM memory, and the power and AI Core use of the same moment (the
    device monitor hands the power to the energy meter instead of asking npu-smi twice)."""
    row = _smi_row(["npu-smi", "info"], parse_npu_smi_info, index)
    return row and {"used_mb": row["hbm_used_mb"], "total_mb": row["hbm_total_mb"], "tool": "npu-smi",
                    "power_w": row.get("power_w"), "utilization_pct": row.get("aicore_pct")}


def _smi_row(argv: list[str], parse, index: int) -> dict | None:
    """Row `index` of a device tool's parsed output; None when the tool is missing or says nothing."""
    if shutil.which(argv[0]) is None:
        return None
    out = _run(argv)
    rows = parse(out) if out else []
    return rows[index] if index < len(rows) else None


def _run(cmd: list[str]) -> str | None:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=20, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None


def device_memory_sample(device: Device) -> dict | None:
    """One reading of the device's tool: device-level used memory, as nvidia-smi / npu-smi show it
    (includes other processes and the allocator's cache, so it is higher than the allocator's
    peak), and what else the same read shows (npu: power, AI Core use)."""
    sampler = {"cuda": nvidia_smi_sample, "npu": npu_smi_sample}.get(device.type)
    return sampler(device.index) if sampler else None


def device_idle_used_mb(device: Device) -> float | None:
    """Device-wide used memory before this run put anything on the card: what the card holds
    anyway (npu-smi's HBM usage includes an idle reservation of ~3 GB on a 910B; nvidia-smi shows
    almost nothing) plus other processes. None on the CPU or without the tool."""
    sample = device_memory_sample(device)
    return sample["used_mb"] if sample else None


def distributed_backend(device_type: str) -> str:
    return {"npu": "hccl", "cuda": "nccl"}.get(device_type, "gloo")


def device_training_settings(device: Device, world_size: int) -> dict:
    """TrainingArguments that put the Trainer on `device` and, under torchrun, on its collective
    backend. use_cpu: without it the Trainer takes a GPU even for --device cpu, and under torchrun
    on a CPU-only host it starts no process group (every rank would train alone)."""
    settings = {"use_cpu": device.type == "cpu"}
    if world_size > 1:
        # every parameter of BERT-for-classification takes part in the loss: skip DDP's per-step search
        settings.update(ddp_backend=distributed_backend(device.type), ddp_find_unused_parameters=False)
    return settings


# --------------------------------------------------------------------------- framework
def choose_api(requested: str, device: Device) -> str:
    """auto = openmind when the device is an NPU and openmind imports, else transformers."""
    if requested not in API_CHOICES:
        raise ConfigError(f"--api {requested!r}", fix=f"use one of {', '.join(API_CHOICES)}")
    if requested == "transformers":
        return "transformers"
    if requested == "openmind" or device.type == "npu":
        problem = _openmind_problem()
        if problem is None:
            return "openmind"
        if requested == "openmind":
            raise DeviceError(f"the openMind library cannot be used: {problem}",
                              fix="pip install openmind==0.9.1 (one framework per environment; see `make doctor`)")
    return "transformers"


def _openmind_problem() -> str | None:
    if importlib.util.find_spec("openmind") is None:
        return "openmind is not installed"
    # openmind hides every traceback of the process unless told otherwise; keep them for users.
    os.environ.setdefault("OPENMIND_HIDE_STACKTRACE", "FALSE")
    try:
        importlib.import_module("openmind")
    except Exception as err:  # noqa: BLE001 - e.g. RuntimeError("Multiple frameworks detected, ...")
        return f"{type(err).__name__}: {err}"
    return None


def trainer_api(api: str) -> SimpleNamespace:
    """The four classes the tutorial uses, from openmind or transformers."""
    module = importlib.import_module("openmind" if api == "openmind" else "transformers")
    return SimpleNamespace(name=api, Trainer=module.Trainer, TrainingArguments=module.TrainingArguments,
                           AutoTokenizer=module.AutoTokenizer,
                           AutoModelForSequenceClassification=module.AutoModelForSequenceClassification)


def load_hub_dataset(api: str, repo_id: str, task: str = hub.GLUE_TASK):
    """GLUE from the openMind hub (OmDataset) or the HF hub (datasets), as a DatasetDict."""
    revision = {"revision": hub.hub_revision(repo_id)} if hub.hub_revision(repo_id) else {}
    if api == "openmind":
        from openmind import OmDataset
        return OmDataset.load_dataset(repo_id, task, **revision)
    import datasets
    return datasets.load_dataset(repo_id, task, **revision)


def accuracy(api: str, predictions, labels) -> float:
    """The tutorial's accuracy: openMind's metric on the openmind API; the same formula otherwise
    (evaluate.load("accuracy") would need the hub at run time)."""
    if api == "openmind":
        from openmind import metrics
        return float(metrics.Accuracy().compute(preds=predictions, labels=labels)["accuracy"])
    return float((predictions == labels).mean())


FUSED_ADAMW = "adamw_torch_fused"
NPU_FUSED_ADAMW = "adamw_torch_npu_fused"   # torch_npu.optim.NpuFusedAdamW in transformers' names


def resolve_speed_settings(settings: dict, precision: str | None, device: Device) -> tuple[dict, list[str]]:
    """A profile's device-dependent speed settings -> (train settings for this device, notes).

    `precision: bf16` is bf16 autocast where the device computes bf16 natively (cuda with compute
    capability >= 8, npu) and fp32 elsewhere (CPU bf16 autocast is slow without AMX and changes the
    numerics). `optim: adamw_torch_fused` becomes the fused kernel the device has: torch's on cuda,
    torch_npu's NpuFusedAdamW on npu, plain adamw_torch on cpu (torch 2.1 has no fused CPU AdamW).
    No `precision` key (the published profile) leaves the settings exactly as written.
    """
    settings, notes = dict(settings), []
    if precision is not None:
        native_bf16 = device.type == "npu" or (
            device.type == "cuda" and torch.cuda.get_device_capability(device.index)[0] >= 8)
        use_bf16 = precision == "bf16" and native_bf16
        if precision == "bf16" and not use_bf16:
            notes.append(f"precision bf16 -> fp32 on {device.type} ({device.name}): no native bf16")
        settings.update(bf16=use_bf16, fp16=False)
    if settings.get("optim") == FUSED_ADAMW and device.type != "cuda":
        from transformers.training_args import OptimizerNames
        npu_fused = NPU_FUSED_ADAMW in {name.value for name in OptimizerNames}
        settings["optim"] = NPU_FUSED_ADAMW if device.type == "npu" and npu_fused else "adamw_torch"
        notes.append(f"optim {FUSED_ADAMW} -> {settings['optim']} on {device.type}")
    return settings, notes


# --------------------------------------------------------------------------- host
def host_record() -> dict:
    return {"hostname": platform.node(), "platform": platform.platform(), "machine": platform.machine(),
            "cpu_count": os.cpu_count()}


def monotonic() -> float:
    return time.perf_counter()


# --------------------------------------------------------------------------- beyond the tutorial
# (parity, energy and trace: docs/parity.md, docs/run-record.md "Parity, energy and trace")
def energy_meter(device: Device, interval_s: float = 2.0, powercap: Path | None = None):
    """An energy.EnergyMeter on this device's best source, or one that records why there is none."""
    from recipe import energy
    try:
        if device.type == "cuda":
            source = energy.NvmlSource(*_nvml_and_target(device.index))
        elif device.type == "npu":
            if shutil.which("npu-smi") is None:
                raise energy.Unavailable("npu-smi is not on PATH")
            source = energy.PowerSource("npu-smi", lambda: _npu_power_w(device.index))
        else:
            source = energy.RaplSource(powercap or energy.POWERCAP)
    except energy.Unavailable as why:
        return energy.EnergyMeter(None, reason=str(why), interval_s=interval_s)
    return energy.EnergyMeter(source, interval_s=interval_s)


def _nvml_and_target(cuda_index: int) -> tuple:
    """(pynvml, NVML index, UUID or None): NVML numbers every GPU of the host, CUDA only the
    visible ones, so map through CUDA_VISIBLE_DEVICES (indices or UUIDs)."""
    from recipe import energy
    try:
        import pynvml  # the nvidia-ml-py distribution
    except ImportError:
        raise energy.Unavailable("nvidia-ml-py (pynvml) is not installed") from None
    visible = [v.strip() for v in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if v.strip()]
    if cuda_index < len(visible):
        chosen = visible[cuda_index]
        return (pynvml, int(chosen), None) if chosen.isdigit() else (pynvml, cuda_index, chosen)
    return pynvml, cuda_index, None


def _npu_power_w(index: int) -> float | None:
    row = _smi_row(["npu-smi", "info"], parse_npu_smi_info, index)
    return row and row["power_w"]


def enable_determinism(device: Device) -> dict:
    """Deterministic algorithms where the device offers them; returns what was switched on.

    - every device: torch.use_deterministic_algorithms(True), warn_only so that an operator without
      a deterministic kernel warns in the log instead of stopping a long run.
    - cuda: CUBLAS_WORKSPACE_CONFIG=:4096:8 (PyTorch "Reproducibility" notes; read when cuBLAS is
      first used, so set here, before any matmul) and cuDNN's deterministic / no-benchmark flags.
    - npu: torch_npu honours torch.use_deterministic_algorithms(True) for its operators (Ascend
      "确定性计算API支持清单", https://www.hiascend.com/doc_center/source/zh/Pytorch/700/apiref/apilist/ptaoplist_001450.html:
      set once per thread, before the first operator runs); HCCL_DETERMINISTIC=true makes the
      reduce collectives (AllReduce, ReduceScatter, Reduce) deterministic on Atlas A2 (CANN 8.0.RC3
      env reference, https://hiascend.com/document/detail/zh/CANNCommunityEdition/80RC3alpha003/apiref/envref/envref_07_0095.html;
      values true/false). It is read when HCCL builds its communicator, so set before the Trainer.
    """
    switched = {"torch.use_deterministic_algorithms": True}
    if device.type == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
        switched.update(CUBLAS_WORKSPACE_CONFIG=os.environ["CUBLAS_WORKSPACE_CONFIG"], cudnn_deterministic=True)
    elif device.type == "npu":
        os.environ.setdefault("HCCL_DETERMINISTIC", "true")
        switched["HCCL_DETERMINISTIC"] = os.environ["HCCL_DETERMINISTIC"]
    torch.use_deterministic_algorithms(True, warn_only=True)
    return switched


class ProfilerSession:
    """A started profiler; stop() writes its files into `directory`, files() finds them."""

    def __init__(self, profiler, directory: Path, npu: bool):
        self.profiler, self.directory, self.npu = profiler, directory, npu

    def stop(self) -> None:
        self.profiler.stop()
        if not self.npu:   # torch.profiler: one Chrome trace JSON, as export_chrome_trace writes it
            self.profiler.export_chrome_trace(str(self.directory / "trace.json"))

    def files(self) -> dict:
        if not self.npu:
            return {"trace": self.directory / "trace.json", "kernel_csv": None}
        # tensorboard_trace_handler: <dir>/<host>_<pid>_<time>_ascend_pt/ASCEND_PROFILER_OUTPUT/
        found = sorted(self.directory.glob("*_ascend_pt/ASCEND_PROFILER_OUTPUT"))
        out = found[-1] if found else self.directory
        return {"trace": out / "trace_view.json",
                "kernel_csv": out / "kernel_details.csv" if (out / "kernel_details.csv").is_file() else None}


def start_profiler(device: Device, directory: Path) -> ProfilerSession:
    """torch.profiler on cpu/cuda; on npu torch_npu.profiler, the same API shape, with the
    experimental config its docs give (Ascend PyTorch Profiler, CANN 8.0.RC2 "Ascend PyTorch
    Profiler接口采集", https://hiascend.com/document/detail/zh/canncommercial/80RC2/devaids/auxiliarydevtool/atlasprofiling_16_0038.html):
    Level0 with AI Core metrics off keeps the overhead low, and tensorboard_trace_handler writes
    and parses the data into ASCEND_PROFILER_OUTPUT (trace_view.json, kernel_details.csv)."""
    directory.mkdir(parents=True, exist_ok=True)
    if device.type == "npu":
        import torch_npu
        prof = torch_npu.profiler
        experimental = prof._ExperimentalConfig(export_type=prof.ExportType.Text,
                                                profiler_level=prof.ProfilerLevel.Level0,
                                                aic_metrics=prof.AiCMetrics.AiCoreNone, l2_cache=False)
        profiler = prof.profile(activities=[prof.ProfilerActivity.CPU, prof.ProfilerActivity.NPU],
                                on_trace_ready=prof.tensorboard_trace_handler(str(directory)),
                                record_shapes=False, with_stack=False, experimental_config=experimental)
    else:
        activities = [torch.profiler.ProfilerActivity.CPU]
        if device.type == "cuda":
            activities.append(torch.profiler.ProfilerActivity.CUDA)
        profiler = torch.profiler.profile(activities=activities, record_shapes=False)
    profiler.start()
    return ProfilerSession(profiler, directory, npu=device.type == "npu")
