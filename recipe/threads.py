"""CPU threads: part of the result on CPU (the same seed gives other numbers with other counts).

torch's default is one intra-op thread per core of the machine, even when this process may use
only a few of them (a container's cpu quota, taskset, a shared CI box): then the threads fight
for the cores and a smoke run is many times slower. The kit chooses instead, in this order:
the `threads` setting (--set threads=N), OMP_NUM_THREADS, else the cores this process may use
(its CPU affinity, capped by a cgroup v2 cpu.max quota and by torch's own default of one thread
per physical core) divided among the ranks on this host.
The manifest records the choice as `threads` (docs/run-record.md).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import torch

ENV_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "TORCH_NUM_THREADS")
CPU_MAX = Path("/sys/fs/cgroup/cpu.max")
# torch's own default (one thread per physical core): never more than that, so hyper-threads
# the affinity mask lists do not double the threads
TORCH_DEFAULT = torch.get_num_threads()


def usable_cores(cpu_max: Path = CPU_MAX) -> tuple[int, str]:
    """(cores this process may run on, how that was found)."""
    try:
        cores, how = len(os.sched_getaffinity(0)), "CPU affinity"
    except (AttributeError, OSError):
        cores, how = os.cpu_count() or 1, "os.cpu_count()"
    try:
        quota, period = cpu_max.read_text().split()[:2]
        if quota != "max" and math.ceil(int(quota) / int(period)) < cores:
            cores, how = max(1, math.ceil(int(quota) / int(period))), f"cgroup quota {cpu_max} ({quota}/{period})"
    except (OSError, ValueError):
        pass
    return cores, how


def choose(setting: int | None, ranks_on_host: int = 1, environ=os.environ,
           cpu_max: Path = CPU_MAX, physical: int = TORCH_DEFAULT) -> tuple[int, str]:
    """(intra-op thread count, why)."""
    if setting is not None:
        return int(setting), "the threads setting"
    raw = environ.get("OMP_NUM_THREADS", "").strip()
    if raw.isdigit() and int(raw) > 0:
        return int(raw), "OMP_NUM_THREADS"
    cores, how = usable_cores(cpu_max)
    if physical < cores:
        cores, how = physical, f"{how}, capped at torch's default of one thread per physical core"
    share = max(1, cores // max(ranks_on_host, 1))
    return share, f"{how}: {cores} core(s)" + (f" / {ranks_on_host} ranks on this host" if ranks_on_host > 1 else "")


def apply(device_type: str, setting: int | None, ranks_on_host: int = 1, environ=os.environ) -> dict:
    """Set torch's intra-op threads on CPU (accelerators keep torch's default: the host threads
    only feed the device); return the manifest's `threads` record."""
    if device_type == "cpu":
        count, source = choose(setting, ranks_on_host, environ)
        torch.set_num_threads(count)
    else:
        source = f"torch default on {device_type} (host threads feed the device)"
    return {"intra_op": torch.get_num_threads(), "inter_op": torch.get_num_interop_threads(),
            "env": {name: environ.get(name) for name in ENV_VARS}, "source": source}


BINDING_ENV = "KIT_CPU_BINDING"   # docker/entrypoint.sh exports what BIND_CORES=1 bound this process to


def cpu_binding(environ=os.environ) -> str | None:
    """The manifest's `cpu_binding`: the cores this process was bound to (rank 0's), or None."""
    return environ.get(BINDING_ENV) or None
