"""What a run changed against the `published` profile, split into two lists for the run record:

- `equivalences`: removals of work that does not change the result (the `exact` profile's),
  each with the reason it keeps the math (docs/performance.md, "The exact profile");
- `math_changes`: everything else that differs, i.e. what makes the run a different experiment
  (fast's batch 32 and bf16, TF32, another learning rate...). `exact` must have none.

Both compare the settings the run really used (after the facade's per-device resolution) with
published's, a missing setting counting as the TrainingArguments default.
"""

from __future__ import annotations

import dataclasses

from recipe import config as kit_config

REFERENCE = "published"
FUSED_ADAMW = {"adamw_torch_fused": "torch's fused AdamW kernel", "adamw_torch_npu_fused": "torch_npu's NpuFusedAdamW"}
# Settings that decide where output goes or how often the loop looks at its state, never the numbers.
BOOKKEEPING = {"output_dir", "report_to", "use_cpu", "save_total_limit", "save_steps", "logging_dir",
               "half_precision_backend", "dataloader_pin_memory", "dataloader_num_workers", "disable_tqdm",
               "ddp_backend", "ddp_find_unused_parameters", "ddp_timeout"}
# Top-level profile keys that are names, not settings.
# `precision` is a request the facade resolves into train.bf16/fp16, which are compared instead.
NOT_MATH = {"profile", "description", "tracking", "train", "tokenize", "precision"}


def training_defaults() -> dict:
    from transformers import TrainingArguments

    return {f.name: f.default for f in dataclasses.fields(TrainingArguments)
            if f.default is not dataclasses.MISSING}


def compare(config: dict, train: dict, world: int = 1, reference: dict | None = None) -> dict:
    """{"equivalences": [...], "math_changes": [...]} of `config` (with `train`: its effective
    train settings on each of `world` ranks) against `reference` (default: the published profile
    as written, on one device)."""
    reference = reference or kit_config.load_profile(REFERENCE)
    defaults = training_defaults()
    ref_train = reference.get("train", {})
    value = lambda settings, key: settings.get(key, defaults.get(key))
    equivalences, changes = [], []

    ref_tok, tok = reference.get("tokenize", {}), config.get("tokenize", {})
    if tok.get("padding", "max_length") != ref_tok.get("padding", "max_length"):
        if tok.get("padding") == "dynamic" and ref_tok.get("padding", "max_length") == "max_length":
            equivalences.append("dynamic padding: each batch padded to its longest sentence, not to "
                                f"{ref_tok.get('max_length')} (padded positions get exactly zero attention weight "
                                "and do not reach the [CLS] output)")
        else:
            changes.append(f"tokenize.padding: {ref_tok.get('padding')} -> {tok.get('padding')}")
    for key in sorted((set(tok) | set(ref_tok)) - {"padding"}):
        if tok.get(key) != ref_tok.get(key):
            changes.append(f"tokenize.{key}: {ref_tok.get(key)} -> {tok.get(key)}")
    for key in sorted((set(config) | set(reference)) - NOT_MATH):
        if config.get(key) == reference.get(key):
            continue
        if key == "deterministic" and config.get(key):
            equivalences.append("deterministic algorithms: the same operations in a fixed order (run-to-run "
                                "equal on one device)")
        else:
            changes.append(f"{key}: {reference.get(key)} -> {config.get(key)}")

    batch_keys = {"per_device_train_batch_size", "gradient_accumulation_steps"}
    global_batch = lambda settings, ranks: (value(settings, "per_device_train_batch_size")
                                            * value(settings, "gradient_accumulation_steps") * ranks)
    if global_batch(train, world) == global_batch(ref_train, 1):
        if world > 1 or any(value(train, k) != value(ref_train, k) for k in batch_keys):
            equivalences.append(f"the global batch of {global_batch(train, world)} as {world} rank(s) x "
                                f"{value(train, 'per_device_train_batch_size')} x "
                                f"{value(train, 'gradient_accumulation_steps')} accumulation steps (gradients "
                                "averaged: the same mean-loss gradient)")
    else:
        changes.append(f"global batch: {global_batch(ref_train, 1)} -> {global_batch(train, world)}")
    for key in sorted((set(train) | set(ref_train)) - BOOKKEEPING - batch_keys):
        mine, theirs = value(train, key), value(ref_train, key)
        if mine == theirs or (mine in (None, False) and theirs in (None, False)):   # unset and off alike
            continue
        note = _equivalence(key, mine, theirs, train, defaults)
        if note:
            equivalences.append(note)
        else:
            changes.append(f"train.{key}: {theirs} -> {mine}")
    return {"equivalences": equivalences, "math_changes": changes}


def _equivalence(key: str, mine, theirs, train: dict, defaults: dict) -> str | None:
    """Why changing `key` from `theirs` to `mine` keeps the math, or None when it does not."""
    if key == "logging_steps" and isinstance(mine, int) and mine > 1:
        return (f"loss logged every {mine} steps: the logged value is the mean of the per-step losses, summed on "
                "the device (no per-step host sync)")
    if key == "logging_nan_inf_filter" and mine is False:
        return "no NaN/inf loss filter: it only acts on a non-finite loss, and costs a host sync every step"
    if key == "optim" and theirs == "adamw_torch" and mine in FUSED_ADAMW:
        return f"fused AdamW ({FUSED_ADAMW[mine]}): the same update in one kernel"
    if key == "per_device_eval_batch_size":
        return f"eval batch {mine}: evaluation only (per-sample loss and accuracy do not depend on the batch)"
    if key == "save_strategy":
        return f"checkpoints {theirs} -> {mine}: writing one reads the weights and changes nothing"
    if key == "torch_compile" and mine is True and train.get("tf32", defaults.get("tf32")) is False:
        return "torch.compile with TF32 off: fp32 kernels, equal to rounding (fused reductions may reorder sums)"
    return None
