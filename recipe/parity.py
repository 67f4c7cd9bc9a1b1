"""Evidence that two runs are the same computation: the weights they started from and the order in
which they saw the training samples, as hashes in summary.json `parity` (docs/parity.md).

The sample order is taken from the Trainer's own sampler while the Trainer iterates it (not from a
second, separate draw): each index it hands out is recorded, and each epoch's order is hashed over
the *content* of those rows (token ids + label), so a reordered data file with the same seed is a
different order, and the same rows reached through a different file layout are the same one.
"""

from __future__ import annotations

import hashlib

import torch
from transformers import TrainerCallback


def weights_sha256(model: torch.nn.Module) -> str:
    """sha256 over every parameter and buffer (name, dtype, shape, bytes), in name order."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        tensor = tensor.detach().to("cpu").contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


def dropout_in_use(model: torch.nn.Module) -> float:
    """The largest dropout probability the model applies in training: its nn.Dropout modules and
    the config's dropout settings (attention dropout may be a functional argument, not a module)."""
    probabilities = [m.p for m in model.modules() if isinstance(m, torch.nn.Dropout)]
    config = getattr(model, "config", None)
    for key in ("hidden_dropout_prob", "attention_probs_dropout_prob", "classifier_dropout"):
        value = getattr(config, key, None)
        if isinstance(value, (int, float)):
            probabilities.append(float(value))
    return max(probabilities, default=0.0)


def row_digest(input_ids, label, attention_mask=None) -> bytes:
    """A row's digest over its real tokens and label: padding is left out, so the same row hashes
    the same under padding to max_length and under dynamic padding (published vs exact)."""
    if attention_mask is not None:
        input_ids = [token for token, keep in zip(input_ids, attention_mask) if keep]
    return hashlib.sha256(repr((list(input_ids), label)).encode()).digest()


def row_digests(dataset) -> list[bytes]:
    """One digest per training row over what the model is fed from it."""
    masks = dataset["attention_mask"] if "attention_mask" in dataset.column_names else None
    labels = dataset["label"] if "label" in dataset.column_names else [None] * len(dataset)
    return [row_digest(ids, label, masks[i] if masks is not None else None)
            for i, (ids, label) in enumerate(zip(dataset["input_ids"], labels))]


def order_sha256(indices: list[int], digests: list[bytes]) -> str:
    digest = hashlib.sha256()
    for index in indices:
        digest.update(digests[index])
    return digest.hexdigest()


def unrounded_loss(logged: float, losses: list[torch.Tensor], accumulation: int, steps: int) -> float | None:
    """The exact mean training loss behind a logged value that the Trainer rounded to 4 decimals,
    as the Trainer computes it (sum of micro-batch losses / accumulation / optimizer steps); None
    when `logged` is not that value rounded (nothing to un-round, or not the same quantity)."""
    exact = float(torch.stack([loss.float() for loss in losses]).sum()) / accumulation / steps
    if not isinstance(logged, float) or logged != round(logged, 4) or round(exact, 4) != logged:
        return None
    return exact


def _innermost_sampler_holder(dataloader):
    """The object whose `.sampler` yields the sample indices: the dataloader's BatchSampler, or the
    BatchSampler inside accelerate's BatchSamplerShard (multi-process), or the DataLoader itself."""
    holder = getattr(dataloader, "batch_sampler", None) or dataloader
    inner = getattr(holder, "batch_sampler", None)
    if inner is not None and hasattr(inner, "sampler"):
        holder = inner
    return holder if getattr(holder, "sampler", None) is not None else None


def record_sampler(dataloader, sink: list) -> bool:
    """Make the dataloader's index sampler append every index it yields to `sink[-1]`.

    The sampler object keeps its class identity (a subclass is swapped in on the instance), so
    accelerate's and the Trainer's isinstance checks and set_epoch calls behave as before."""
    holder = _innermost_sampler_holder(dataloader)
    if holder is None:
        return False
    sampler = holder.sampler
    if getattr(sampler, "_kit_records", False):
        return True
    base = type(sampler)

    def __iter__(self):
        for index in base.__iter__(self):
            if sink:
                sink[-1].append(int(index))
            yield index

    sampler.__class__ = type(f"Recording{base.__name__}", (base,), {"__iter__": __iter__, "_kit_records": True})
    return True


class ParityCallback(TrainerCallback):
    """Hashes the initial weights at construction (the model as loaded and seeded, before the Trainer
    takes a step; the same on a resumed run) and each epoch's sample order while training.

    It also un-rounds the logged loss: transformers 4.x (the images' 4.45) logs
    round(loss, 4), which hides any per-step difference between two devices below 5e-5. The loss of
    every training forward pass is kept (a forward hook) and, when the logged value is exactly that
    loss rounded to 4 decimals, the exact value replaces it before the run record writes it (this
    callback runs before the recorder). Single process only: under DDP the logged loss is the mean
    over ranks, which this process does not see."""

    def __init__(self, model: torch.nn.Module, train_dataset, samples_per_step: int):
        self.initial_weights = weights_sha256(model)
        self.dropout = dropout_in_use(model)
        self.dataset, self.samples_per_step = train_dataset, samples_per_step
        # every row's digest now, before training: at an epoch's end (inside the timed loop) only the
        # order is hashed. Done there, it cost ~1.2 s per 3 200 rows on this CPU, inside the first
        # epoch's seconds (the bench measured fast's kit path 21 % slower than a plain Trainer)
        self._digests = row_digests(train_dataset) if train_dataset is not None else []
        self.epochs: list[list[int]] = []   # indices the sampler handed out, one list per epoch
        self.hashes: list[str] = []
        self.samples_trained = 0            # over the hashed epochs (energy's samples per joule)
        self.recording = False
        self._epoch_start_step = 0
        self._losses: list[torch.Tensor] = []   # training forward passes since the last log
        self._last_logged_step = 0
        self._hook = None

    def on_train_begin(self, args, state, control, train_dataloader=None, model=None, **kwargs):
        self.recording = train_dataloader is not None and record_sampler(train_dataloader, self.epochs)
        self._last_logged_step = state.global_step
        if model is not None and args.world_size == 1:
            self._hook = model.register_forward_hook(self._keep_loss)

    def _keep_loss(self, module, inputs, output):
        loss = output.get("loss") if isinstance(output, dict) else getattr(output, "loss", None)
        if module.training and loss is not None:
            self._losses.append(loss.detach())   # no host sync here: summed at the next log

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not logs or "loss" not in logs:
            return
        steps = state.global_step - self._last_logged_step
        if self._losses and steps > 0:
            exact = unrounded_loss(logs["loss"], self._losses, args.gradient_accumulation_steps, steps)
            if exact is not None:
                logs["loss"] = exact
        self._losses, self._last_logged_step = [], state.global_step

    def on_train_end(self, args, state, control, **kwargs):
        if self._hook is not None:
            self._hook.remove()

    def on_epoch_begin(self, args, state, control, **kwargs):
        self.epochs.append([])
        self._epoch_start_step = state.global_step

    def on_epoch_end(self, args, state, control, **kwargs):
        if not self.recording or not self.epochs:
            return
        indices = self.epochs[-1]
        if state.max_steps and state.global_step >= state.max_steps:
            # stopped inside the epoch (max_steps): the loader had already drawn a batch or two ahead
            trained = (state.global_step - self._epoch_start_step) * self.samples_per_step
            indices = indices[:trained]
        self.hashes.append(order_sha256(indices, self._digests))
        self.samples_trained += len(indices)

    def as_record(self) -> dict:
        """summary.json `parity` (docs/run-record.md)."""
        return {"initial_weights_sha256": self.initial_weights, "sample_order_sha256": list(self.hashes),
                "dropout": self.dropout, "deterministic": torch.are_deterministic_algorithms_enabled()}
