"""`--trace N`: a profiler trace of N training steps after a short warm-up, and the summary's table
of where the time went (summary.json `trace`, docs/run-record.md).

The profiler is the device's own (torch.profiler on cpu/cuda, torch_npu.profiler on npu; chosen by
recipe.facade.start_profiler) and its files stay in `<run>/trace/` in the format it writes them:
a Chrome trace JSON (chrome://tracing, Perfetto, TensorBoard) on cpu/cuda, the ASCEND_PROFILER_OUTPUT
directory (trace_view.json, kernel_details.csv, ...) on npu. The table is read back from those files.
"""

from __future__ import annotations

import argparse
import csv
import json
from collections import defaultdict
from pathlib import Path

from transformers import TrainerCallback

from recipe import facade

TRACE_DIR = "trace"
WARMUP_STEPS = 2          # the first steps pay for allocator growth, kernel selection and caches
TOP = 10


def step_count(text: str) -> int:
    """--trace N: a whole number of steps >= 1."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a step count: give a whole number >= 1, e.g. --trace 5")
    return int(text)


class TraceCallback(TrainerCallback):
    def __init__(self, steps: int, output: Path, device: facade.Device, warmup: int = WARMUP_STEPS):
        self.steps, self.output, self.device, self.warmup = steps, Path(output), device, warmup
        self.session = None
        self.running = False
        self.traced_steps = 0
        self.wall_ms = 0.0
        self._start = self._first_step = None

    def on_step_begin(self, args, state, control, **kwargs):
        if self.session is None and state.global_step >= self.warmup:
            facade.synchronize(self.device)
            self.session = facade.start_profiler(self.device, self.output / TRACE_DIR)
            self.running = True
            self._first_step = state.global_step
            self._start = facade.monotonic()

    def on_step_end(self, args, state, control, **kwargs):
        if self.running and state.global_step - self._first_step >= self.steps:
            self._finish(state.global_step)

    def on_train_end(self, args, state, control, **kwargs):
        if self.running:   # training ended inside the window
            self._finish(state.global_step)

    def _finish(self, step: int) -> None:
        self.running = False
        facade.synchronize(self.device)
        self.wall_ms = (facade.monotonic() - self._start) * 1000
        self.traced_steps = step - self._first_step
        self.session.stop()   # writes the files

    def as_record(self) -> dict | None:
        """summary.json `trace`; None when no step was traced."""
        if self.session is None or not self.traced_steps:
            return None
        return summarize(self.session.files(), self.output, self.traced_steps, self.wall_ms)


def summarize(files: dict, run_dir: Path, steps: int, wall_ms: float) -> dict:
    """The table from the profiler's own files: device kernels where there are any (self time =
    kernel time), else host operators (self time = time not spent in a nested operator)."""
    trace_file = files["trace"]
    if files.get("kernel_csv") is not None:            # torch_npu: kernel_details.csv
        by_name, busy = npu_kernel_times(files["kernel_csv"])
        basis = "device"
    else:
        events = load_chrome_trace(trace_file)
        kernels = [e for e in events if e.get("cat") == "kernel"]
        if kernels:                                   # CUDA kernels in the kineto trace
            by_name, busy, basis = _sum_by_name(kernels), _union_ms(kernels), "device"
        else:
            by_name, busy, basis = cpu_self_times(events), None, "cpu"
    ranked = sorted(by_name.items(), key=lambda item: -item[1])[:TOP]
    return {"steps": steps, "file": str(Path(trace_file).relative_to(run_dir)),
            "top_ops": [{"name": name, "self_ms": round(ms, 3), "share": round(ms / wall_ms, 4) if wall_ms else None}
                        for name, ms in ranked],
            "traced_wall_ms": round(wall_ms, 3),
            "outside_kernels_share": None if busy is None or not wall_ms else round(max(1 - busy / wall_ms, 0.0), 4),
            "time_basis": basis}


def load_chrome_trace(path: Path) -> list[dict]:
    """The complete ('X') events of a Chrome trace JSON."""
    data = json.loads(Path(path).read_text())
    events = data["traceEvents"] if isinstance(data, dict) else data
    return [e for e in events if e.get("ph") == "X" and "dur" in e]


def cpu_self_times(events: list[dict]) -> dict[str, float]:
    """Self time (ms) per host operator name: its duration minus its directly nested operators',
    nesting taken per thread from the timestamps (kineto writes ts/dur in microseconds)."""
    totals: dict[str, float] = defaultdict(float)
    threads: dict[tuple, list[dict]] = defaultdict(list)
    for event in events:
        if event.get("cat") == "cpu_op":
            threads[(event.get("pid"), event.get("tid"))].append(event)
    for ops in threads.values():
        ops.sort(key=lambda e: (float(e["ts"]), -float(e["dur"])))
        stack: list[list] = []   # [end, name, duration, children]
        for op in ops:
            start, duration = float(op["ts"]), float(op["dur"])
            while stack and stack[-1][0] <= start:
                _close(stack.pop(), totals)
            if stack:
                stack[-1][3] += duration
            stack.append([start + duration, op["name"], duration, 0.0])
        while stack:
            _close(stack.pop(), totals)
    return dict(totals)


def _close(frame: list, totals: dict) -> None:
    _, name, duration, children = frame
    totals[name] += max(duration - children, 0.0) / 1000


def _sum_by_name(events: list[dict]) -> dict[str, float]:
    totals: dict[str, float] = defaultdict(float)
    for event in events:
        totals[event["name"]] += float(event["dur"]) / 1000
    return dict(totals)


def _union_ms(spans) -> float:
    """Milliseconds covered by at least one of the (start_us, duration_us) spans or events."""
    intervals = sorted((float(e["ts"]), float(e["ts"]) + float(e["dur"])) if isinstance(e, dict) else
                       (e[0], e[0] + e[1]) for e in spans)
    covered, current_start, current_end = 0.0, None, None
    for start, end in intervals:
        if current_end is None or start > current_end:
            if current_end is not None:
                covered += current_end - current_start
            current_start, current_end = start, end
        else:
            current_end = max(current_end, end)
    if current_end is not None:
        covered += current_end - current_start
    return covered / 1000


def npu_kernel_times(path: Path) -> tuple[dict[str, float], float]:
    """kernel_details.csv of the Ascend PyTorch Profiler (columns `Name`, `Type`,
    `Start Time(us)`, `Duration(us)`, ...): device ms per operator type, and the busy ms."""
    totals: dict[str, float] = defaultdict(float)
    spans = []
    with Path(path).open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            duration = float(row["Duration(us)"])
            totals[row.get("Type") or row["Name"]] += duration / 1000
            spans.append((float(row["Start Time(us)"]), duration))
    return dict(totals), _union_ms(spans)
