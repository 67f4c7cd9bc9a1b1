"""Energy of a run, beside its memory: how many watt-hours training and evaluation took.

Every source is turned into one timeline of (seconds, cumulative joules) readings, sampled in a
background thread; the energy of any interval is the difference of that curve at its two ends.

- nvml: NVIDIA's cumulative energy counter, nvmlDeviceGetTotalEnergyConsumption (millijoules since
  the driver loaded; Volta and newer), read through nvidia-ml-py (pynvml). Where the GPU lacks it,
  nvmlDeviceGetPowerUsage (milliwatts) is sampled and integrated instead.
- npu-smi: the Power(W) column of `npu-smi info` (parsed by recipe.tools.smi), sampled at the interval
  and integrated (trapezoids): the number is only as fine as the interval, which is recorded.
- rapl: the CPU packages' counters under /sys/class/powercap (energy_uj, microjoules, wrapping at
  max_energy_range_uj). Often readable by root only: then energy is n/a with that reason.

The device-specific choice of source is made by recipe.facade.energy_meter. During a run the
meter is driven by the device monitor (recipe/monitor.py): one thread, one tool read per tick.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from pathlib import Path

from transformers import TrainerCallback

from recipe.sampling import BackgroundSampler

POWERCAP = Path("/sys/class/powercap")
JOULES_PER_WH = 3600.0


# --------------------------------------------------------------------------- sources
class Unavailable(Exception):
    """This machine offers no reading of that kind; the message says why (it goes into the record)."""


class NvmlSource:
    """One GPU through NVML. `nvml` is the pynvml module (a stub with the same names in tests)."""

    def __init__(self, nvml, index: int = 0, uuid: str | None = None):
        self.nvml = nvml
        try:
            nvml.nvmlInit()
            self.handle = (nvml.nvmlDeviceGetHandleByUUID(uuid) if uuid
                           else nvml.nvmlDeviceGetHandleByIndex(index))
        except nvml.NVMLError as err:
            raise Unavailable(f"NVML: {err}") from None
        try:
            nvml.nvmlDeviceGetTotalEnergyConsumption(self.handle)
            self.name, self.counter = "nvml", True
        except nvml.NVMLError:   # pre-Volta GPUs: NVML_ERROR_NOT_SUPPORTED -> integrate power samples
            self.name, self.counter = "nvml", False
            self.power_w()   # fails here, not mid-run, when power is not readable either

    def joules(self) -> float | None:
        if not self.counter:
            return None
        return self.nvml.nvmlDeviceGetTotalEnergyConsumption(self.handle) / 1000.0   # mJ -> J

    def power_w(self, reading: dict | None = None) -> float | None:
        try:
            return self.nvml.nvmlDeviceGetPowerUsage(self.handle) / 1000.0            # mW -> W
        except self.nvml.NVMLError as err:
            if not self.counter:
                raise Unavailable(f"NVML reads neither energy nor power: {err}") from None
            return None

    def close(self) -> None:
        try:
            self.nvml.nvmlShutdown()
        except self.nvml.NVMLError:
            pass


class PowerSource:
    """A tool that reports instantaneous power only (npu-smi): integrated by the meter."""

    def __init__(self, name: str, read_power_w: Callable[[], float | None]):
        self.name, self.read_power_w, self.counter = name, read_power_w, False
        if read_power_w() is None:
            raise Unavailable(f"{name} shows no power reading for this device")

    def joules(self) -> float | None:
        return None

    def power_w(self, reading: dict | None = None) -> float | None:
        """The power in the device monitor's reading of this tick, else a reading of its own."""
        if reading is not None and reading.get("power_w") is not None:
            return reading["power_w"]
        return self.read_power_w()

    def close(self) -> None:
        pass


class RaplSource:
    """The CPU packages' RAPL counters (intel-rapl:N, and AMD's that use the same interface);
    sub-domains (intel-rapl:N:M: core, uncore, dram) are inside the package figure, so skipped."""

    def __init__(self, root: Path = POWERCAP):
        self.name, self.counter = "rapl", True
        if not root.is_dir():
            raise Unavailable(f"{root} does not exist (no RAPL interface: a VM or a non-x86 CPU)")
        self.zones = sorted(p for p in root.glob("intel-rapl:*") if p.name.count(":") == 1)
        if not self.zones:
            raise Unavailable(f"no RAPL package zone under {root}")
        try:
            self.last = [self._read(zone / "energy_uj") for zone in self.zones]
            self.ranges = [self._read(zone / "max_energy_range_uj") for zone in self.zones]
        except PermissionError:
            raise Unavailable(f"{self.zones[0] / 'energy_uj'} is readable by root only "
                              "(kernels >= 5.10 restrict it; run as root or `chmod o+r` it)") from None
        self.total_uj = 0

    @staticmethod
    def _read(path: Path) -> int:
        return int(path.read_text().strip())

    def joules(self) -> float:
        for i, zone in enumerate(self.zones):
            now = self._read(zone / "energy_uj")
            delta = now - self.last[i]
            if delta < 0:            # the counter wrapped at max_energy_range_uj
                delta += self.ranges[i]
            self.total_uj += delta
            self.last[i] = now
        return self.total_uj / 1e6

    def power_w(self, reading: dict | None = None) -> float | None:
        return None

    def close(self) -> None:
        pass


# --------------------------------------------------------------------------- meter
class EnergyMeter(BackgroundSampler, TrainerCallback):
    """Samples a source every `interval_s` while training runs (use as a context manager around
    trainer.train()) and, as a Trainer callback, notes when training and each evaluation ran."""

    def __init__(self, source=None, reason: str | None = None, interval_s: float = 2.0,
                 clock: Callable[[], float] = time.perf_counter):
        super().__init__(interval_s, "energy-meter", active=source is not None)
        self.source, self.reason, self.clock = source, reason, clock
        self.readings: list[tuple[float, float]] = []   # (t, cumulative joules)
        self.powers: list[float] = []                    # instantaneous (or per-interval) watts
        self._integrated, self._last_power = 0.0, None   # power sources: running trapezoid sum
        self.train_span: list[float] = []
        self.eval_spans: list[tuple[float, float]] = []
        self._lock = threading.Lock()

    def close(self) -> None:
        self.source.close()

    def sample(self, reading: dict | None = None) -> None:
        """One reading: the counter where there is one, else power integrated since the last.
        `reading`: what the device monitor's tool read this tick (recipe/monitor.py), if any."""
        if self.source is None:
            return
        with self._lock:
            now = self.clock()
            try:
                power, joules = self.source.power_w(reading), self.source.joules()
            except (OSError, ValueError, Unavailable):
                return   # one failed read (tool busy) is a gap in the curve, not a failed run
            if joules is None:
                if power is None:
                    return
                if self._last_power is not None:
                    then, before = self.readings[-1][0], self._last_power
                    self._integrated += (before + power) / 2 * (now - then)
                self._last_power = power
                joules = self._integrated
            elif power is None and self.readings and now > self.readings[-1][0]:
                power = (joules - self.readings[-1][1]) / (now - self.readings[-1][0])   # RAPL: mean over the interval
            if power is not None:
                self.powers.append(power)
            self.readings.append((now, joules))

    # Trainer callbacks: where training and evaluation start and end
    def on_train_begin(self, args, state, control, **kwargs):
        self.sample()
        self.train_span = [self.clock()]

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        end = self.clock()
        runtime = (metrics or {}).get("eval_runtime")
        if runtime is not None:   # the Trainer's own measure of the evaluation that just ended
            self.sample()
            self.eval_spans.append((end - float(runtime), end))

    def on_train_end(self, args, state, control, **kwargs):
        self.sample()
        self.train_span.append(self.clock())

    # results
    def energy_j(self, start: float, end: float) -> float | None:
        """Joules between two instants, read off the cumulative curve (linear between readings)."""
        if len(self.readings) < 2 or start < self.readings[0][0] - 1e-9 or end > self.readings[-1][0] + 1e-9:
            return None
        return max(_interpolate(self.readings, end) - _interpolate(self.readings, start), 0.0)

    def as_record(self, samples: int | None = None) -> dict:
        """summary.json `energy` (docs/run-record.md)."""
        empty = {"source": None, "reason": self.reason, "train_wh": None, "eval_wh": None,
                 "mean_power_w": None, "peak_power_w": None, "samples_per_joule": None, "interval_s": None}
        if self.source is None or len(self.train_span) < 2:
            return {**empty, "reason": self.reason or "training did not finish"}
        start, end = self.train_span
        total = self.energy_j(start, end)
        if total is None:
            return {**empty, "source": self.source.name, "reason": f"{self.source.name} gave fewer than 2 readings"}
        eval_j = sum(self.energy_j(a, b) or 0.0 for a, b in self.eval_spans)
        train_j = max(total - eval_j, 0.0)
        return {"source": self.source.name, "reason": None,
                "train_wh": round(train_j / JOULES_PER_WH, 9), "eval_wh": round(eval_j / JOULES_PER_WH, 9),
                "mean_power_w": round(total / (end - start), 2) if end > start else None,
                "peak_power_w": round(max(self.powers), 2) if self.powers else None,
                "samples_per_joule": round(samples / train_j, 4) if samples and train_j > 0 else None,
                "interval_s": self.interval_s}


def _interpolate(readings: list[tuple[float, float]], t: float) -> float:
    if t <= readings[0][0]:
        return readings[0][1]
    for (t0, e0), (t1, e1) in itertools.pairwise(readings):
        if t <= t1:
            return e0 if t1 == t0 else e0 + (e1 - e0) * (t - t0) / (t1 - t0)
    return readings[-1][1]


def merge(records: list[dict], samples: int | None) -> dict:
    """One run's `energy` from each rank's record: energies and powers add up over the cards
    (every rank measured its own device), the peak is the sum of the ranks' peaks (an upper bound)."""
    if len(records) == 1:
        first = dict(records[0])
    else:
        first = dict(records[0])
        for key in ("train_wh", "eval_wh", "mean_power_w", "peak_power_w"):
            values = [r.get(key) for r in records]
            first[key] = None if any(v is None for v in values) else round(sum(values), 9)
    train_j = (first["train_wh"] or 0.0) * JOULES_PER_WH
    first["samples_per_joule"] = round(samples / train_j, 4) if samples and train_j > 0 else None
    return first
