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
    collator cannot tell a training batch from an evaluation one. The real count stays a device
    tensor until the end of the run: reading it per batch would make the host wait for the device
    at every step, which the profile did not ask for."""

    def __init__(self, model):
        self._real = None   # a 0-d tensor on the batch's device, summed without a host sync
        self.total_tokens = 0
        model.register_forward_pre_hook(self._count, with_kwargs=True)

    def _count(self, module, args, kwargs):
        mask = kwargs.get("attention_mask")
        if module.training and mask is not None:   # evaluation runs with model.eval()
            real = mask.sum()
            self._real = real if self._real is None else self._real + real
            self.total_tokens += mask.numel()   # the shape: known on the host

    @property
    def real_tokens(self) -> int:
        return 0 if self._real is None else int(self._real)   # one sync, when the record is written


class RecordCallback(TrainerCallback):
    """The run's clock and its metrics lines. Training time is the training loop (on_train_begin
    to on_train_end) without its pauses: evaluations and checkpoint writes are timed apart
    (`eval` lines' eval_runtime_s, `checkpoint` lines' seconds), and so is everything after the
    loop (saving the model, finishing tracking). An epoch's seconds leave out the pauses inside it."""

    def __init__(self, record: RunRecord, device: facade.Device, elapsed_offset: float = 0.0, stop=None):
        self.record, self.device = record, device
        self.stop = stop   # a StopOnSignal: a partial epoch cut by a signal gets no epoch line
        self.elapsed_offset = elapsed_offset   # seconds already trained before a resume
        self.start = None
        self.epoch_start = None
        self.epoch_paused = 0.0      # seconds of evaluation and checkpoint writes inside this epoch
        self.last_epoch_seconds = None
        self.ended_at = None         # elapsed() when the training loop ended (on_train_end)
        self.checkpoints_timed = False   # time_checkpoints could wrap the Trainer's checkpoint writes
        self.batches_per_epoch = 0   # this rank's training batches per epoch (the Trainer's dataloader)

    def elapsed(self) -> float:
        return round(self.elapsed_offset + facade.monotonic() - self.start, 3)

    def loop_seconds(self) -> float:
        """The training loop's wall seconds (resumed parts included), up to on_train_end."""
        return self.ended_at if self.ended_at is not None else self.elapsed()

    def on_train_begin(self, args, state, control, train_dataloader=None, **kwargs):
        facade.synchronize(self.device)
        self.start = facade.monotonic()
        self.batches_per_epoch = len(train_dataloader) if train_dataloader is not None else 0

    def on_train_end(self, args, state, control, **kwargs):
        facade.synchronize(self.device)
        self.ended_at = self.elapsed()

    def on_epoch_begin(self, args, state, control, **kwargs):
        facade.synchronize(self.device)
        self.epoch_start, self.epoch_paused = facade.monotonic(), 0.0

    def on_epoch_end(self, args, state, control, **kwargs):
        facade.synchronize(self.device)
        seconds = round(facade.monotonic() - self.epoch_start - self.epoch_paused, 3)
        self.last_epoch_seconds = seconds
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
        if not metrics:
            return
        self.epoch_paused += metrics.get("eval_runtime") or 0.0
        if not state.is_world_process_zero:
            return
        line = {"kind": "eval", "step": state.global_step, "epoch": round(state.epoch or 0.0, 4),
                "accuracy": metrics.get("eval_accuracy"), "mcc": metrics.get("eval_mcc"),
                "eval_loss": metrics.get("eval_loss"), "eval_runtime_s": metrics.get("eval_runtime"),
                "elapsed_s": self.elapsed()}
        self.record.append_metrics(line)

    def time_checkpoints(self, trainer) -> None:
        """Time every checkpoint the Trainer writes (save_strategy, or a signal's): a `checkpoint`
        line per write. Wraps Trainer._save_checkpoint, the one method every checkpoint goes
        through (transformers 4.45 and 5.x); without it the writes stay inside training time and
        the summary says so (`timing.checkpoints_timed`)."""
        save = getattr(trainer, "_save_checkpoint", None)
        self.checkpoints_timed = callable(save)
        if not self.checkpoints_timed:
            return

        def timed_save(*args, **kwargs):
            started = facade.monotonic()
            result = save(*args, **kwargs)
            facade.synchronize(self.device)
            seconds = round(facade.monotonic() - started, 3)
            self.epoch_paused += seconds
            if self.record.enabled:
                self.record.append_metrics({"kind": "checkpoint", "step": trainer.state.global_step,
                                            "seconds": seconds, "elapsed_s": self.elapsed()})
            return result

        trainer._save_checkpoint = timed_save


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

    def due(self, control) -> bool:
        """Whether to look for a signal after this step. Alone: every step (a local flag, free).
        Several processes: only where the Trainer logs, evaluates or saves anyway, because asking
        every rank is a collective and a host sync; every rank decides alike (same step counts)."""
        return distributed.world_size() == 1 or bool(control.should_log or control.should_evaluate
                                                     or control.should_save or control.should_training_stop)

    def on_step_end(self, args, state, control, **kwargs):
        if not self.due(control):
            return control
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
