"""Trainer hooks that feed the run record: step/eval lines, epoch times, token counts."""

from __future__ import annotations

import signal
import sys

from transformers import TrainerCallback

from recipe import distributed, facade
from recipe.errors import INTERRUPTED_EXIT_CODES
from recipe.record import RunRecord


class TokenCounter:
    """Counts the real (non-pad) and total tokens of every training forward pass, so the padding
    fraction is measured on what the model was fed (max_length or dynamic padding). A forward
    pre-hook, not the collator: the Trainer collates a batch before it calls model.train(), so the
    collator cannot tell a training batch from an evaluation one."""

    def __init__(self, model):
        self.real_tokens = 0
        self.total_tokens = 0
        model.register_forward_pre_hook(self._count, with_kwargs=True)

    def _count(self, module, args, kwargs):
        mask = kwargs.get("attention_mask")
        if module.training and mask is not None:   # evaluation runs with model.eval()
            self.real_tokens += int(mask.sum())
            self.total_tokens += int(mask.numel())


class RecordCallback(TrainerCallback):
    def __init__(self, record: RunRecord, device: facade.Device, elapsed_offset: float = 0.0, stop=None):
        self.record, self.device = record, device
        self.stop = stop   # a StopOnSignal: a partial epoch cut by a signal gets no epoch line
        self.elapsed_offset = elapsed_offset   # seconds already trained before a resume
        self.start = None
        self.epoch_start = None
        self.batches_per_epoch = 0   # this rank's training batches per epoch (the Trainer's dataloader)

    def elapsed(self) -> float:
        return round(self.elapsed_offset + facade.monotonic() - self.start, 3)

    def on_train_begin(self, args, state, control, train_dataloader=None, **kwargs):
        facade.synchronize(self.device)
        self.start = facade.monotonic()
        self.batches_per_epoch = len(train_dataloader) if train_dataloader is not None else 0

    def on_epoch_begin(self, args, state, control, **kwargs):
        facade.synchronize(self.device)
        self.epoch_start = facade.monotonic()

    def on_epoch_end(self, args, state, control, **kwargs):
        facade.synchronize(self.device)
        seconds = round(facade.monotonic() - self.epoch_start, 3)
        if state.is_world_process_zero and not (self.stop and self.stop.mid_epoch(state)):
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


class StopOnSignal(TrainerCallback):
    """SIGINT (Ctrl-C) or SIGTERM (docker stop, a scheduler): finish the current optimizer step,
    save a checkpoint (even where the profile saves none) and stop, so --resume continues exactly
    there. A second signal stops at once. Under torchrun every rank stops at the same step."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.heard: int | None = None        # the signal this process received
        self.signum: int | None = None       # the signal the ranks stopped for (any rank's)
        self.stopped_at: int | None = None   # the step whose checkpoint was saved
        self._previous: dict = {}

    def __enter__(self):
        for signum in self.SIGNALS:
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc):
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}

    def _handle(self, signum, frame):
        if self.heard is not None:
            self.__exit__()
            raise KeyboardInterrupt(f"second {signal.Signals(signum).name}: stopped at once")
        self.heard = signum
        print(f"\n{signal.Signals(signum).name}: saving a checkpoint at the end of this step, then stopping "
              "(send it again to stop at once, without a checkpoint)", file=sys.stderr, flush=True)

    @property
    def exit_code(self) -> int:
        return INTERRUPTED_EXIT_CODES[signal.Signals(self.signum).name]

    def mid_epoch(self, state) -> bool:
        return self.stopped_at is not None and abs((state.epoch or 0.0) - round(state.epoch or 0.0)) > 1e-6

    def on_step_end(self, args, state, control, **kwargs):
        signum = distributed.max_over_ranks(self.heard or 0, args.device)   # a signal to any rank stops all
        if signum:
            self.signum, self.stopped_at = signum, state.global_step
            control.should_save = True
            control.should_training_stop = True
        return control

    def on_epoch_end(self, args, state, control, **kwargs):
        if self.mid_epoch(state):   # the step's checkpoint is saved; a partial epoch is not evaluated
            control.should_evaluate = False
            control.should_save = False
        return control
