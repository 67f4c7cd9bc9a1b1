"""Running under torchrun: which process this is, the profile's global batch kept at any world
size, and the end-of-run agreement that every rank finished.

torchrun sets RANK / LOCAL_RANK / WORLD_SIZE / LOCAL_WORLD_SIZE; a plain `python -m recipe.finetune`
has none of them and is world size 1. The process group itself is created by the Trainer, on the
backend recipe.facade.distributed_backend chooses (hccl / nccl / gloo). See docs/multi-card.md.
"""

from __future__ import annotations

import atexit
import contextlib
import faulthandler
import math
import os
import resource
import shutil
import sys
import tempfile
from pathlib import Path

from recipe.errors import ConfigError, KitError

# Memory figures of one rank's report that the summary also gives as the largest over all ranks.
PEAK_KEYS = ("peak_allocated_mb", "peak_reserved_mb", "device_used_mb_peak", "device_used_mb_over_baseline",
             "host_rss_mb_peak")


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def local_rank() -> int:
    """This process's index on its node: which of the node's visible cards it takes."""
    return int(os.environ.get("LOCAL_RANK", "0"))


def local_world_size() -> int:
    return int(os.environ.get("LOCAL_WORLD_SIZE", str(world_size())))


def is_main() -> bool:
    return rank() == 0


def _positive_int(train: dict, key: str, default: int | None = None) -> int:
    value = train.get(key, default)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(f"train.{key}={value!r} must be a whole number >= 1",
                          fix=f"e.g. --set train.{key}=16")
    return value


def plan_batch(train: dict, world: int) -> tuple[dict, dict]:
    """(train settings for this world size, the manifest's `batch` record).

    The global batch (samples per optimizer step, all ranks together) is `train.global_batch_size`,
    or else the profile's batch on one card: per_device_train_batch_size x gradient_accumulation_steps.
    Each rank takes global / world of it: the per-device batch is the largest divisor of that share
    not above the profile's per-device batch (the size whose memory the profile was tried with), and
    gradient accumulation makes up the rest. So one card and eight cards train with the same batch.
    """
    train = dict(train)
    explicit = "global_batch_size" in train
    per_device = _positive_int(train, "per_device_train_batch_size", 8)   # the Trainer's default
    accumulation = _positive_int(train, "gradient_accumulation_steps", 1)
    if explicit:
        global_batch, origin = _positive_int(train, "global_batch_size"), "train.global_batch_size"
        train.pop("global_batch_size")   # the kit's setting, not a TrainingArguments one
    else:
        global_batch = per_device * accumulation
        origin = (f"the profile's global batch (per_device_train_batch_size {per_device} x "
                  f"gradient_accumulation_steps {accumulation})")
    if global_batch % world:
        multiple = world * math.ceil(global_batch / world)
        fits = [n for n in range(1, global_batch + 1) if global_batch % n == 0]
        raise ConfigError(
            f"{origin} = {global_batch} cannot be split evenly over {world} processes (WORLD_SIZE)",
            fix=f"run on a process count that divides {global_batch} (NPROC x NNODES in {fits}), or choose "
                f"a global batch that {world} divides: --set train.global_batch_size={multiple}")
    share = global_batch // world
    new_per_device = max(n for n in range(1, min(per_device, share) + 1) if share % n == 0)
    new_accumulation = share // new_per_device
    train.update(per_device_train_batch_size=new_per_device, gradient_accumulation_steps=new_accumulation)
    changes = [f"{key} {old} -> {new}" for key, old, new in (
        ("per_device_train_batch_size", per_device, new_per_device),
        ("gradient_accumulation_steps", accumulation, new_accumulation)) if old != new]
    adjusted = None if not changes else (
        f"{', '.join(changes)} to keep the global batch {global_batch} on {world} process(es): "
        f"{new_per_device} per device x {world} x {new_accumulation} accumulation")
    return train, {"global": global_batch, "per_device": new_per_device, "world_size": world,
                   "gradient_accumulation_steps": new_accumulation, "adjusted": adjusted}


_SCRATCH: list[Path] = []


def scratch_dir(output: Path) -> Path:
    """Where this process writes its working files (generated data, the tiny model): the run
    directory on rank 0; a private temporary directory, removed at exit, on the others. Other
    ranks write nothing into the run directory: on one host they would race rank 0, and across
    hosts the run directory need not be shared."""
    if is_main():
        return output
    path = Path(tempfile.mkdtemp(prefix=f"kit-rank{rank()}-"))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    _SCRATCH.append(path)   # leave() skips atexit: it removes these itself
    return path


def check_world(trainer_world_size: int) -> None:
    """torchrun's WORLD_SIZE must be the Trainer's: otherwise each process would train alone and
    rank 0 would record a run that is not the one launched."""
    if trainer_world_size != world_size():
        raise KitError(f"torchrun started {world_size()} processes but the Trainer runs with world size "
                       f"{trainer_world_size}: it did not join the process group",
                       fix="every rank must see the same device type: check --device and the "
                           "*_VISIBLE_DEVICES variables; `make doctor` explains more")


def gather_from_all_ranks(report: dict) -> list[dict]:
    """Every rank's report, in rank order. Also the end-of-run agreement: it returns only once
    every rank got here, i.e. trained and saved without error. A rank that died makes the
    collective fail (gloo: connection closed by peer) or time out (the process group's timeout,
    train.ddp_timeout, 1800 s by default) and this raises: rank 0 then writes no summary."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return [report]
    reports: list = [None] * dist.get_world_size()
    try:
        dist.all_gather_object(reports, report)
    except RuntimeError as err:  # gloo and hccl raise RuntimeError, nccl its subclass DistBackendError
        first_line = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise KitError(f"rank {rank()}: not every rank finished the run, so no summary is written "
                       f"({first_line})",
                       fix="see the failing rank's error above (torchrun names it under 'Root Cause')",
                       ) from None
    return reports


def share_from_main(value):
    """Rank 0's `value` on every rank (e.g. the checkpoint --resume continues from: ranks on
    different disks must not pick different steps). Needs the process group (the Trainer's
    TrainingArguments start it); without one, or on one process, `value` itself."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return value
    box = [value if dist.get_rank() == 0 else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def max_over_ranks(value: int, device) -> int:
    """The largest `value` of all ranks, on every rank (one small all-reduce on >1 process)."""
    import torch
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return value
    tensor = torch.tensor([value], device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return int(tensor.item())


END_OF_RUN_TIMEOUT_S = 600   # saving the model, the last agreement and the record take seconds


@contextlib.contextmanager
def end_of_run_watchdog(seconds: float = END_OF_RUN_TIMEOUT_S):
    """Should the end of a run hang (a peer stuck in the last collective, a stuck filesystem), every
    thread's stack goes to stderr and the process exits 1 after `seconds`, instead of holding the job
    (and a CI slot) forever. faulthandler's timer is a C thread: it fires even while the hang holds
    the GIL, where a Python timer or signal handler would wait forever."""
    stream = _stream_with_fd()
    if stream is None:   # no stderr file descriptor at all (an embedding host): run without it
        yield
        return
    faulthandler.dump_traceback_later(seconds, exit=True, file=stream)
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()


def _stream_with_fd():
    """stderr, or the process's original stderr where a caller replaced it (pytest's capsys, a
    notebook): faulthandler writes to a file descriptor, not to a Python object."""
    for stream in (sys.stderr, sys.__stderr__):
        try:
            stream.fileno()
            return stream
        except (AttributeError, OSError, ValueError):   # io.UnsupportedOperation is both
            continue
    return None


def leave(code: int) -> None:
    """End a torchrun worker whose part of the run is done (the record written, or its error said).

    Without a process group (one process, a test calling main()) it returns. With one, the process
    exits now, skipping the interpreter's teardown: there gloo's and NCCL's destructors wait for
    worker threads that need the GIL the exiting thread holds, and the rank hangs or aborts after a
    complete run (pytorch/pytorch#56297; suspected in a CI run whose torch 2.1 torchrun smoke never
    printed its done line). Nothing is lost: the kernel closes the sockets; this process's scratch
    directories are removed here, since atexit does not run."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        for path in _SCRATCH:
            shutil.rmtree(path, ignore_errors=True)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def manifest_record(backend: str, ddp_timeout_s: int) -> dict:
    """The manifest's `distributed`: how the processes talked (backend and timeout None on one)."""
    world = world_size()
    record = {"backend": backend if world > 1 else None, "world_size": world,
              "nodes": max(world // local_world_size(), 1),
              "ddp_timeout_s": ddp_timeout_s if world > 1 else None}
    if record["backend"] == "hccl":   # on Ascend HCCL's own connect/execute timeouts apply as well
        record.update({name: os.environ.get(name) for name in ("HCCL_CONNECT_TIMEOUT", "HCCL_EXEC_TIMEOUT")})
    return record


def host_rss_peak_mb() -> float:
    """This process's peak resident memory on the host (Linux reports ru_maxrss in KiB): the one
    memory figure a CPU run has, and on an accelerator the host side of each rank."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def merge_memory(reports: list[dict]) -> dict:
    """The summary's `memory`: rank 0's sources, each peak as the largest over the ranks (the card
    that needed most), and every rank's own figures under `per_rank`."""
    memory = {key: reports[0].get(key) for key in ("source", "device_total_mb", "device_source", "device_baseline_mb")}
    for key in PEAK_KEYS:
        values = [r[key] for r in reports if r.get(key) is not None]
        memory[key] = max(values) if values else None
    memory["per_rank"] = [{key: r.get(key) for key in ("rank", "host", "device", "device_baseline_mb", *PEAK_KEYS)}
                          for r in reports]
    return memory
