"""Energy with faithful fakes: an NVML stub with pynvml's names and units (millijoules, milliwatts),
`npu-smi info` printing recorded 910B texts, and a powercap tree in a temporary directory."""

from __future__ import annotations

import shutil
from types import SimpleNamespace

import pytest
from fakes import NPU_SMI_DIR, fake_tool

from recipe import energy, facade

WH = 3600.0


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


class NVMLError(Exception):
    """pynvml.NVMLError: str() is nvmlErrorString's text."""


class FakeNvml:
    """pynvml's functions used by recipe.energy: a GPU drawing `watts`, with (Volta+) or without
    the cumulative energy counter."""

    NVMLError = NVMLError

    def __init__(self, clock, watts=300.0, counter=True, init_error=None):
        self.clock, self.watts, self.counter, self.init_error = clock, watts, counter, init_error
        self.indices, self.shutdown = [], False

    def nvmlInit(self):
        if self.init_error:
            raise NVMLError(self.init_error)

    def nvmlDeviceGetHandleByIndex(self, index):
        self.indices.append(index)
        return SimpleNamespace(index=index)

    def nvmlDeviceGetHandleByUUID(self, uuid):
        return SimpleNamespace(uuid=uuid)

    def nvmlDeviceGetTotalEnergyConsumption(self, handle):
        if not self.counter:
            raise NVMLError("Not Supported")
        return int(5_000_000 + self.watts * self.clock() * 1000)   # millijoules since driver load

    def nvmlDeviceGetPowerUsage(self, handle):
        return int(self.watts * 1000)                                # milliwatts

    def nvmlShutdown(self):
        self.shutdown = True


def drive(meter, clock, train_until=10.0, evals=((8.0, 10.0),), step=1.0):
    """Training from t=0 to `train_until` with evaluations (start, end), sampled every `step`."""
    args = state = control = None
    with meter:
        meter.on_train_begin(args, state, control)
        while clock.t < train_until:
            clock.t = round(clock.t + step, 6)
            meter.sample()
            for start, end in evals:
                if clock.t == end:
                    meter.on_evaluate(args, state, control, metrics={"eval_runtime": end - start})
        meter.on_train_end(args, state, control)
    return meter.as_record(samples=None)


def test_nvml_counter_splits_train_and_eval_energy():
    clock = Clock()
    nvml = FakeNvml(clock, watts=300.0)
    meter = energy.EnergyMeter(energy.NvmlSource(nvml, index=0), interval_s=3600, clock=clock)
    record = drive(meter, clock)
    assert record["source"] == "nvml" and record["reason"] is None
    assert record["train_wh"] == pytest.approx(300 * 8 / WH)
    assert record["eval_wh"] == pytest.approx(300 * 2 / WH)
    assert record["mean_power_w"] == pytest.approx(300.0) and record["peak_power_w"] == pytest.approx(300.0)
    assert nvml.shutdown


def test_nvml_without_energy_counter_integrates_power():
    clock = Clock()
    nvml = FakeNvml(clock, watts=250.0, counter=False)
    meter = energy.EnergyMeter(energy.NvmlSource(nvml), interval_s=3600, clock=clock)
    record = drive(meter, clock, evals=())
    assert record["source"] == "nvml" and record["train_wh"] == pytest.approx(250 * 10 / WH)
    assert record["eval_wh"] == 0


def test_nvml_failure_is_n_a_with_nvmls_message(monkeypatch):
    nvml = FakeNvml(Clock(), init_error="Driver Not Loaded")
    with pytest.raises(energy.Unavailable, match="NVML: Driver Not Loaded"):
        energy.NvmlSource(nvml)


def test_cuda_visible_devices_maps_to_the_nvml_index(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    _, index, uuid = facade._nvml_and_target(1)
    assert (index, uuid) == (3, None)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-8f6e1a2b-0000-1111-2222-333344445555")
    _, index, uuid = facade._nvml_and_target(0)
    assert uuid == "GPU-8f6e1a2b-0000-1111-2222-333344445555"


def test_npu_smi_power_column_is_integrated_over_the_interval(tmp_path, monkeypatch):
    """npu-smi printing the recorded 910B4 table (88.4 W), then the busy 910B3 one (291.5 W on NPU 0)."""
    tool = fake_tool(tmp_path / "bin", "npu-smi", (NPU_SMI_DIR / "healthy_910b4.txt").read_text())
    monkeypatch.setenv("PATH", str(tool.parent))
    clock = Clock()
    meter = facade.energy_meter(facade.Device(type="npu", name="910B4", index=0), interval_s=3600)
    meter.clock = clock
    assert meter.source.name == "npu-smi"
    with meter:                                    # t=0: 88.4 W
        meter.on_train_begin(None, None, None)
        (tool.parent / ".npu-smi.out").write_text((NPU_SMI_DIR / "warning_busy_910b3.txt").read_text())
        clock.t = 2.0
        meter.sample()                             # t=2: 291.5 W
        clock.t = 4.0
        meter.on_train_end(None, None, None)       # t=4: 291.5 W
    record = meter.as_record(samples=962)
    expected_j = (88.4 + 291.5) / 2 * 2 + 291.5 * 2
    assert record["source"] == "npu-smi" and record["interval_s"] == 3600
    assert record["train_wh"] == pytest.approx(expected_j / WH, abs=1e-6)
    assert record["peak_power_w"] == 291.5
    assert record["samples_per_joule"] == pytest.approx(962 / expected_j, rel=1e-3)


def test_npu_smi_missing_is_n_a_with_the_reason(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    meter = facade.energy_meter(facade.Device(type="npu", name="910B4"))
    assert meter.as_record()["reason"] == "npu-smi is not on PATH"


def powercap(root, packages):
    """/sys/class/powercap as the intel_rapl driver lays it out: package zones and their sub-zones."""
    for index, (uj, max_uj) in enumerate(packages):
        zone = root / f"intel-rapl:{index}"
        (zone / f"intel-rapl:{index}:0").mkdir(parents=True)
        (zone / "name").write_text(f"package-{index}\n")
        (zone / "energy_uj").write_text(f"{uj}\n")
        (zone / "max_energy_range_uj").write_text(f"{max_uj}\n")
        (zone / f"intel-rapl:{index}:0" / "name").write_text("core\n")
        (zone / f"intel-rapl:{index}:0" / "energy_uj").write_text("999999999\n")   # inside the package figure
    return root


def test_rapl_sums_packages_and_survives_the_counter_wrapping(tmp_path):
    root = powercap(tmp_path / "powercap", [(262_143_000_000, 262_143_328_850), (1_000_000, 262_143_328_850)])
    clock = Clock()
    meter = facade.energy_meter(facade.Device(type="cpu", name="x86_64"), interval_s=3600, powercap=root)
    meter.clock = clock
    with meter:
        meter.on_train_begin(None, None, None)
        clock.t = 10.0
        # package 0 wrapped: 328 850 uJ to the top, then 671 150 uJ more; package 1 gained 2 J
        (root / "intel-rapl:0" / "energy_uj").write_text("671150\n")
        (root / "intel-rapl:1" / "energy_uj").write_text("3000000\n")
        meter.on_train_end(None, None, None)
    record = meter.as_record()
    assert record["source"] == "rapl"
    assert record["train_wh"] == pytest.approx((1.0 + 2.0) / WH)
    assert record["mean_power_w"] == pytest.approx(0.3)


def test_no_powercap_is_n_a_with_the_reason(tmp_path):
    meter = facade.energy_meter(facade.Device(type="cpu", name="x86_64"), powercap=tmp_path / "absent")
    record = meter.as_record()
    assert record["source"] is None and "does not exist" in record["reason"]
    assert record["train_wh"] is None and record["samples_per_joule"] is None


def test_ranks_add_up():
    one = {"source": "nvml", "reason": None, "train_wh": 1.0, "eval_wh": 0.1, "mean_power_w": 300.0,
           "peak_power_w": 350.0, "samples_per_joule": None, "interval_s": 2.0}
    merged = energy.merge([one, dict(one)], samples=7200)
    assert merged["train_wh"] == 2.0 and merged["mean_power_w"] == 600.0
    assert merged["samples_per_joule"] == pytest.approx(7200 / (2.0 * WH))


@pytest.mark.skipif(shutil.which("nvidia-smi") is None, reason="needs an NVIDIA driver")
def test_real_nvml_reads_a_counter():
    import pynvml
    source = energy.NvmlSource(pynvml, 0)
    assert source.joules() is None or source.joules() > 0
    source.close()
