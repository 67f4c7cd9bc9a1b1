"""Trainer hooks that feed the run record: step/eval lines, epoch times, token counts."""

from __future__ import annotations

import os

from transformers import TrainerCallback

from recipe import facade
from recipe.record import RunRecord


class TokenCountingCollator:
    """Wraps the data collator and counts real (non-pad) and total tokens of training batches, so
    the padding fraction is measured on what the model was fed (max_length or dynamic padding)."""

    def __init__(self, collator, model):
        self.collator, self.model = collator, model
        self.real_tokens = 0
        self.total_tokens = 0

    def __call__(self, features):
        batch = self.collator(features)
        if self.model.training and "attention_mask" in batch:  # the eval loop runs with model.eval()
            mask = batch["attention_mask"]
            self.real_tokens += int(mask.sum())
            self.total_tokens += int(mask.numel())
        return batch


class RecordCallback(TrainerCallback):
    def __init__(self, record: RunRecord, device: facade.Device, elapsed_offset: float = 0.0):
        self.record, self.device = record, device
        self.elapsed_offset = elapsed_offset   # seconds already trained before a resume
        self.start = None
        self.epoch_start = None

    def elapsed(self) -> float:
        return round(self.elapsed_offset + facade.monotonic() - self.start, 3)

    def on_train_begin(self, args, state, control, **kwargs):
        facade.synchronize(self.device)
        self.start = facade.monotonic()

    def on_epoch_begin(self, args, state, control, **kwargs):
        facade.synchronize(self.device)
        self.epoch_start = facade.monotonic()

    def on_epoch_end(self, args, state, control, **kwargs):
        facade.synchronize(self.device)
        seconds = round(facade.monotonic() - self.epoch_start, 3)
        if state.is_world_process_zero:
            self.record.append_metrics({"kind": "epoch", "step": state.global_step,
                                        "epoch": round(state.epoch or 0.0, 4), "seconds": seconds,
                                        "elapsed_s": self.elapsed()})

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not logs or not state.is_world_process_zero:
            return
        if "loss" in logs:
            line = {"kind": "train", "step": state.global_step, "epoch": round(state.epoch or 0.0, 4),
                    "loss": logs["loss"], "lr": logs.get("learning_rate"), "grad_norm": logs.get("grad_norm"),
                    "elapsed_s": self.elapsed()}
            self.record.append_metrics(line)

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        if not metrics or not state.is_world_process_zero:
            return
        line = {"kind": "eval", "step": state.global_step, "epoch": round(state.epoch or 0.0, 4),
                "accuracy": metrics.get("eval_accuracy"), "mcc": metrics.get("eval_mcc"),
                "eval_loss": metrics.get("eval_loss"), "eval_runtime_s": metrics.get("eval_runtime"),
                "elapsed_s": self.elapsed()}
        self.record.append_metrics(line)


# Test hook, read here and nowhere else (tests/test_distributed_runs.py): inert unless both are set.
FAIL_RANK_ENV, FAIL_STEP_ENV = "KIT_TEST_FAIL_RANK", "KIT_TEST_FAIL_AT_STEP"


class InjectedFailure(TrainerCallback):
    """KIT_TEST_FAIL_RANK=R KIT_TEST_FAIL_AT_STEP=N: global rank R raises at the end of optimizer
    step N, so the tests can prove that one failing rank fails the whole torchrun run with that
    rank's error shown and no complete-looking summary."""

    def __init__(self, rank: int, step: int):
        self.rank, self.step = rank, step

    @classmethod
    def from_environ(cls, environ=os.environ) -> InjectedFailure | None:
        if not environ.get(FAIL_RANK_ENV) or not environ.get(FAIL_STEP_ENV):
            return None
        return cls(int(environ[FAIL_RANK_ENV]), int(environ[FAIL_STEP_ENV]))

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step and args.process_index == self.rank:
            raise RuntimeError(f"{FAIL_RANK_ENV}={self.rank}: rank {self.rank} fails at step {self.step} "
                               "on purpose (test hook)")
