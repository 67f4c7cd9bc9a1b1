"""Timing the steady state of a Trainer run, and the arithmetic that turns timings into the table.

The arithmetic is pure (plain numbers in, numbers out) so tests can check it on hand-made timings.
"""

from __future__ import annotations

import resource
import statistics
from dataclasses import asdict, dataclass

from transformers import TrainerCallback

from recipe import facade

COLA_TRAIN_ROWS = 8551       # GLUE CoLA train split
EPOCHS = 3                   # the tutorial's (the Trainer's default)
BASELINE = "tutorial"
AA_BASELINE = "tutorial-aa"  # the tutorial script again in every round: the A/A pair that measures the noise
OVERHEAD_LIMIT_PERCENT = 3.0

# Dense peak TFLOPS from the vendors' datasheets (no sparsity). fp32 is the plain fp32 rate: PyTorch
# does not use TF32 for matmuls unless told to. Longest name fragment first: "H100 PCIe" before "H100".
PEAK_TFLOPS = (
    ("H100 PCIe", {"bf16": 756.0, "fp16": 756.0, "fp32": 51.0}),
    ("H100", {"bf16": 989.0, "fp16": 989.0, "fp32": 67.0}),
    ("H200", {"bf16": 989.0, "fp16": 989.0, "fp32": 67.0}),
    ("A100", {"bf16": 312.0, "fp16": 312.0, "fp32": 19.5}),
)


class StepTimer(TrainerCallback):
    """Times steps after `warmup_steps` and stops the run once at least `min_steps` steps and
    `min_seconds` are timed. The device is synchronised only at the two ends: a sync per step would
    add the very host syncs the fast profile removes."""

    def __init__(self, device: facade.Device, warmup_steps: int, min_steps: int, min_seconds: float):
        if warmup_steps < 1:
            raise ValueError("warmup_steps must be >= 1 (the first step pays for allocation and kernel setup)")
        self.device, self.warmup_steps = device, warmup_steps
        self.min_steps, self.min_seconds = max(min_steps, 1), min_seconds
        self.start = None
        self.seconds = None
        self.steps = 0
        self.cpu_start = None
        self.cpu_seconds = None   # this process's CPU time (all threads: SwanLab's and the sampler's too)
        self.args = None
        self.train_dataloader = None

    def on_train_begin(self, args, state, control, train_dataloader=None, **kwargs):
        self.args, self.train_dataloader = args, train_dataloader

    def on_step_end(self, args, state, control, **kwargs):
        step = state.global_step
        if step == self.warmup_steps:
            facade.synchronize(self.device)
            self.start, self.cpu_start = facade.monotonic(), process_cpu_seconds()
        elif self.start is not None and self.seconds is None:
            timed = step - self.warmup_steps
            if timed >= self.min_steps and facade.monotonic() - self.start >= self.min_seconds:
                self._stop(timed)
                control.should_training_stop = True
        return control

    def on_train_end(self, args, state, control, **kwargs):
        if self.start is not None and self.seconds is None:   # max_steps came first
            self._stop(state.global_step - self.warmup_steps)

    def _stop(self, timed_steps: int) -> None:
        facade.synchronize(self.device)
        self.seconds, self.steps = facade.monotonic() - self.start, timed_steps
        self.cpu_seconds = process_cpu_seconds() - self.cpu_start


def process_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass
class RoundTiming:
    """One configuration's timed window in one round."""
    config: str
    round: int
    steps: int
    seconds: float
    batch_size: int
    cpu_seconds: float | None = None

    @property
    def samples_per_second(self) -> float:
        return self.steps * self.batch_size / self.seconds

    @property
    def samples_per_cpu_second(self) -> float | None:
        """Samples per second of this process's CPU time: on a CPU device with one torch thread it is
        blind to other processes' load, which wall time is not."""
        return self.steps * self.batch_size / self.cpu_seconds if self.cpu_seconds else None

    def as_record(self) -> dict:
        per_cpu = self.samples_per_cpu_second
        return {**asdict(self), "samples_per_second": round(self.samples_per_second, 3),
                "samples_per_cpu_second": None if per_cpu is None else round(per_cpu, 3)}


def paired_ratios(timings: list[RoundTiming], config: str, baseline: str = BASELINE,
                  measure: str = "samples_per_second") -> list[float]:
    """samples/s of `config` over the baseline's, round by round: both ran back to back under the same
    load, so the ratio cancels most of a shared machine's drift. `measure`: samples_per_second (wall)
    or samples_per_cpu_second."""
    by_round = {(t.config, t.round): getattr(t, measure) for t in timings}
    rounds = sorted({t.round for t in timings if t.config == config})
    return [by_round[(config, r)] / by_round[(baseline, r)] for r in rounds if (baseline, r) in by_round]


def speedup(timings: list[RoundTiming], config: str, baseline: str = BASELINE,
            measure: str = "samples_per_second") -> float:
    """Median of the paired per-round ratios."""
    return statistics.median(paired_ratios(timings, config, baseline, measure))


def median_samples_per_second(timings: list[RoundTiming], config: str) -> float:
    return statistics.median(t.samples_per_second for t in timings if t.config == config)


def overhead_percent(speedup_vs_baseline: float) -> float:
    """How much slower than the baseline, in percent: a speed-up of 0.97 is +3.09 % time per sample."""
    return (1.0 / speedup_vs_baseline - 1.0) * 100.0


def noise_floor_percent(timings: list[RoundTiming], aa: str = AA_BASELINE, baseline: str = BASELINE) -> float | None:
    """The A/A noise floor: the largest time-per-sample difference, in percent, between two runs of the SAME
    configuration in one round. A difference this small between two configurations is not resolvable."""
    ratios = paired_ratios(timings, aa, baseline)
    return max(abs(overhead_percent(r)) for r in ratios) if ratios else None


def resolvable(percent: float, floor: float | None) -> bool | None:
    """Whether a time-per-sample difference stands out of the A/A noise (None: no A/A pair was run)."""
    return None if floor is None else abs(percent) > floor


def projected_seconds(samples_per_second: float, rows: int = COLA_TRAIN_ROWS, epochs: int = EPOCHS) -> float:
    return rows * epochs / samples_per_second


def padding_fraction(real_tokens: int, total_tokens: int) -> float | None:
    return None if not total_tokens else 1.0 - real_tokens / total_tokens


def train_flops_per_token(nonembedding_params: int, layers: int, hidden: int, context: float) -> float:
    """Forward + backward FLOPs per real token: 6 per weight (2 forward, 4 backward) plus attention
    scores and values over `context` positions (12 L d s; Kaplan et al. 2020, PaLM appendix B)."""
    return 6.0 * nonembedding_params + 12.0 * layers * hidden * context


def peak_tflops(device_name: str, precision: str) -> float | None:
    for fragment, peaks in PEAK_TFLOPS:
        if fragment.lower() in device_name.lower():
            return peaks.get(precision)
    return None


def model_flops_utilisation(real_tokens_per_second: float, flops_per_token: float,
                            peak: float | None) -> float | None:
    """Useful FLOPs (real tokens only, so padding counts as waste) over the device's peak."""
    if not peak:
        return None
    return real_tokens_per_second * flops_per_token / (peak * 1e12)
