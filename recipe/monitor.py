"""The one thread that watches the device while training runs (docs/run-record.md `memory`, `energy`).

Every tick it reads the device's tool ONCE (recipe.facade.device_memory_sample: nvidia-smi or
npu-smi) for memory, and hands that same reading to the energy meter: on an NPU the power comes
from it (no second npu-smi call), while a counter (NVML on NVIDIA, RAPL on a CPU) is read in the
same tick. Use as a context manager around trainer.train(); the energy meter stays a Trainer
callback of its own (it notes when training and each evaluation ran).
"""

from __future__ import annotations

import threading

from recipe import facade
from recipe.sampling import BackgroundSampler


class DeviceMonitor(BackgroundSampler):
    """Keeps the device-wide memory peak, and the peak above the baseline measured before the run
    (`facade.device_idle_used_mb`), so that two devices' figures mean the same: what this run added."""

    def __init__(self, device: facade.Device, meter=None, interval_s: float | None = None,
                 baseline_mb: float | None = None):
        interval = interval_s or (meter.interval_s if meter is not None else 2.0)
        watches_device = device.type != "cpu"
        super().__init__(interval, "device-monitor",
                         active=watches_device or (meter is not None and meter.source is not None))
        self.device, self.meter, self.watches_device = device, meter, watches_device
        self.peak_used_mb = None
        self.total_mb = None
        self.baseline_mb = baseline_mb
        self.tool = "none"
        self.reads = 0   # device tool calls: one per tick
        self._lock = threading.Lock()

    def sample(self) -> None:
        reading = facade.device_memory_sample(self.device) if self.watches_device else None
        with self._lock:
            self.reads += self.watches_device
            if reading:
                self.tool, self.total_mb = reading["tool"], reading["total_mb"]
                self.peak_used_mb = max(self.peak_used_mb or 0, reading["used_mb"])
        if self.meter is not None:
            self.meter.sample(reading)

    def close(self) -> None:
        if self.meter is not None and self.meter.source is not None:
            self.meter.close()

    def as_record(self) -> dict:
        over = (round(self.peak_used_mb - self.baseline_mb, 1)
                if self.peak_used_mb is not None and self.baseline_mb is not None else None)
        return {"device_used_mb_peak": self.peak_used_mb, "device_total_mb": self.total_mb,
                "device_source": self.tool, "device_baseline_mb": self.baseline_mb,
                "device_used_mb_over_baseline": over}
