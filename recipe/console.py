"""What a run prints: one progress bar per phase, one aligned line per epoch, warnings once, the
`done:` line, on rank 0 only. Everything printed, plus every log the Trainer emits and every
warning, also goes to <run>/console.log; the numbers themselves are in metrics.jsonl.

It replaces the Trainer's ProgressCallback (a `{'loss': ...}` dict printed between the bars at every
log) and silences the library bars that are not a phase of the run (dataset.map, loading weights,
one "Writing model shards" bar per checkpoint). Hub downloads keep their bars.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import re
import sys
import time
import warnings
from pathlib import Path

from transformers import TrainerCallback

from recipe import distributed, facade

LOG_NAME = "console.log"
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
URL = re.compile(r"https?://")
LIBRARY_LOGGERS = ("transformers", "datasets")
COLUMNS = (("epoch", 7), ("train loss", 10), ("eval loss", 9), ("accuracy", 8), ("MCC", 7),
           ("seconds", 8), ("samples/s", 9), ("peak memory", 0))


class Console:
    """Prints on rank 0 and mirrors every line into <run>/console.log once `attach` names the run.
    Lines said before that (the header, notes) are kept and written when the file opens with the
    run record, so a run stopped by bad input leaves no log file behind."""

    def __init__(self, main: bool = True):
        self.main = main
        self.file = None
        self.pending: list[str] = []
        self.handlers: list[tuple[logging.Logger, logging.Handler]] = []
        self.warned: set[str] = set()
        quiet_libraries(main)
        if main:
            self.saved_showwarning, warnings.showwarning = warnings.showwarning, self._show_warning

    def say(self, text: str, stream=None) -> None:
        if self.main:
            _write_above_bars(text, stream or sys.stdout)
        self.log(text)

    def warn(self, text: str) -> None:
        self.say(f"warning: {text}", sys.stderr)

    def log(self, text: str) -> None:
        """Into console.log only (the full detail the screen leaves out)."""
        if not self.main:
            return
        if self.file is None:
            self.pending.append(text)
        else:
            self.file.write(text + "\n")
            self.file.flush()

    def attach(self, output: Path) -> None:
        if not self.main:
            return
        output.mkdir(parents=True, exist_ok=True)
        self.file = open(output / LOG_NAME, "a", encoding="utf-8")  # noqa: SIM115 - open for the whole run; --resume appends
        for text in self.pending:
            self.log(text)
        self.pending.clear()
        handler = logging.StreamHandler(self.file)
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        for name in LIBRARY_LOGGERS:
            logging.getLogger(name).addHandler(handler)
            self.handlers.append((logging.getLogger(name), handler))

    def take_over(self, trainer, device: facade.Device, clock=None) -> ConsoleCallback:
        """Swap the Trainer's printing callbacks for this console's. `clock`: the run record's
        RecordCallback, whose epoch seconds the epoch lines show (one clock for screen and record)."""
        from transformers.trainer_callback import PrinterCallback, ProgressCallback
        trainer.remove_callback(ProgressCallback)
        trainer.remove_callback(PrinterCallback)
        callback = ConsoleCallback(self, device, clock)
        trainer.add_callback(callback)
        return callback

    @contextlib.contextmanager
    def captured(self):
        """What a library prints to stdout meanwhile goes into console.log only (SwanLab greets,
        says where it saves and how to sync on every run); a URL in it still reaches the screen."""
        buffer = io.StringIO()
        try:
            with contextlib.redirect_stdout(buffer):
                yield
        finally:
            text = ANSI.sub("", buffer.getvalue())
            for line in text.splitlines():
                self.log(line)
                if self.main and URL.search(line):
                    _write_above_bars(line.strip(), sys.stdout)

    def quiet(self, callback):
        """The callback with every Trainer event run inside `captured()`."""
        for name in dir(TrainerCallback):
            if name.startswith("on_"):
                event = getattr(callback, name)
                setattr(callback, name, self._captured_call(event))
        return callback

    def _captured_call(self, event):
        def call(*args, **kwargs):
            with self.captured():
                return event(*args, **kwargs)
        return call

    def close(self) -> None:
        for logger, handler in self.handlers:
            logger.removeHandler(handler)
        self.handlers.clear()
        if self.main:
            warnings.showwarning = self.saved_showwarning
        if self.file is not None:
            self.file.close()
            self.file = None

    def _show_warning(self, message, category, filename, lineno, file=None, line=None) -> None:
        """Python warnings: each distinct one once on stderr (a warning repeated every step says
        nothing new), every occurrence with its source location in console.log."""
        text = f"{category.__name__}: {message}"
        self.log(f"warning: {filename}:{lineno}: {text}")
        if text not in self.warned:
            self.warned.add(text)
            _write_above_bars(f"warning: {text}", sys.stderr)


def quiet_libraries(main: bool) -> None:
    import datasets
    import huggingface_hub.utils
    import transformers
    datasets.disable_progress_bars()                   # one "Map" bar per split
    transformers.utils.logging.disable_progress_bar()  # "Loading weights", "Writing model shards"
    if main:
        huggingface_hub.utils.enable_progress_bars()   # a hub download is worth a bar
    else:   # the other ranks print errors only: rank 0 speaks for the run
        huggingface_hub.utils.disable_progress_bars()
        transformers.utils.logging.set_verbosity_error()
        datasets.utils.logging.set_verbosity_error()
        warnings.simplefilter("ignore")


def _write_above_bars(text: str, stream) -> None:
    from tqdm.auto import tqdm
    tqdm.write(text, file=stream)   # clears and redraws an open bar around the line


def _bar(total: int, desc: str, initial: int = 0, leave: bool = True):
    from tqdm.auto import tqdm
    interactive = sys.stderr.isatty()
    return tqdm(total=total, initial=initial, desc=desc, leave=leave, dynamic_ncols=True,
                mininterval=0.1 if interactive else 10.0, file=sys.stderr)


def epoch_header() -> str:
    return "  ".join(name.rjust(width) if width else name for name, width in COLUMNS)


def epoch_line(epoch: str, train_loss, eval_loss, accuracy, mcc, seconds, samples_per_s, peak: str) -> str:
    def number(value, digits: int) -> str:
        return "n/a" if value is None else f"{value:.{digits}f}"
    cells = (epoch, number(train_loss, 4), number(eval_loss, 4), number(accuracy, 4), number(mcc, 4),
             number(seconds, 1), number(samples_per_s, 1), peak)
    return "  ".join(cell.rjust(width) if width else cell for cell, (_, width) in zip(cells, COLUMNS))


def peak_memory(device: facade.Device) -> str:
    allocated = facade.allocator_peaks_mb(device)["peak_allocated_mb"]
    if allocated is not None:
        return f"{allocated:.0f} MiB {device.type}"
    return f"{distributed.host_rss_peak_mb():.0f} MiB host RSS"   # a CPU run's only memory figure


class ConsoleCallback(TrainerCallback):
    """The bars and the epoch lines. Acts on the world's process zero only."""

    def __init__(self, console: Console, device: facade.Device, clock=None):
        self.console, self.device, self.clock = console, device, clock
        self.train_bar = self.eval_bar = None
        self.header_shown = False
        self.pending = None   # the finished epoch waiting for its evaluation

    def on_train_begin(self, args, state, control, **kwargs):
        self.global_batch = args.per_device_train_batch_size * args.gradient_accumulation_steps * args.world_size
        self.started, self.start_step = time.monotonic(), state.global_step
        if state.is_world_process_zero:
            self.train_bar = _bar(state.max_steps, "train", initial=state.global_step)

    def on_epoch_begin(self, args, state, control, **kwargs):
        self.epoch_started, self.epoch_step, self.losses = time.monotonic(), state.global_step, []

    def on_step_end(self, args, state, control, **kwargs):
        if self.train_bar is not None:
            self.train_bar.update(state.global_step - self.train_bar.n)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        self.console.log(json.dumps({"step": state.global_step, **logs}, default=str))
        if "loss" in logs:
            self.losses.append(logs["loss"])
            if self.train_bar is not None:
                elapsed = max(time.monotonic() - self.started, 1e-9)
                rate = (state.global_step - self.start_step) * self.global_batch / elapsed
                self.train_bar.set_postfix_str(f"loss {logs['loss']:.4f}  lr {logs.get('learning_rate', 0):.2e}  "
                                               f"{rate:.1f} samples/s", refresh=False)

    def on_epoch_end(self, args, state, control, train_dataloader=None, **kwargs):
        seconds = time.monotonic() - self.epoch_started
        if self.clock is not None and self.clock.last_epoch_seconds is not None:
            seconds = self.clock.last_epoch_seconds   # the record's figure: pauses for checkpoints left out
        samples = (state.global_step - self.epoch_step) * self.global_batch
        if train_dataloader is not None and hasattr(train_dataloader, "dataset"):
            samples = min(samples, len(train_dataloader.dataset))   # the last batch is short
        self.pending = {"epoch": f"{round(state.epoch or 0)}/{round(args.num_train_epochs)}",
                        "train_loss": sum(self.losses) / len(self.losses) if self.losses else None,
                        "seconds": seconds, "samples_per_s": samples / max(seconds, 1e-9)}

    def on_prediction_step(self, args, state, control, eval_dataloader=None, **kwargs):
        if not state.is_world_process_zero:
            return
        if self.eval_bar is None and eval_dataloader is not None and hasattr(eval_dataloader, "__len__"):
            self.eval_bar = _bar(len(eval_dataloader), "eval", leave=False)
        if self.eval_bar is not None:
            self.eval_bar.update(1)

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        if self.eval_bar is not None:
            self.eval_bar.close()
            self.eval_bar = None
        if state.is_world_process_zero:
            self._epoch_line(metrics or {})

    def on_train_end(self, args, state, control, **kwargs):
        if state.is_world_process_zero and self.pending:
            self._epoch_line({})   # an epoch that had no evaluation after it
        if self.train_bar is not None:
            self.train_bar.close()
            self.train_bar = None

    def _epoch_line(self, metrics: dict) -> None:
        epoch = self.pending or {"epoch": f"{metrics.get('epoch', 0):.2f}", "train_loss": None,
                                 "seconds": None, "samples_per_s": None}
        self.pending = None
        if not self.header_shown:
            self.console.say(epoch_header())
            self.header_shown = True
        self.console.say(epoch_line(epoch["epoch"], epoch["train_loss"], metrics.get("eval_loss"),
                                    metrics.get("eval_accuracy"), metrics.get("eval_mcc"), epoch["seconds"],
                                    epoch["samples_per_s"], peak_memory(self.device)))
