"""Differences between versions of the same libraries: the images' transformers 4.45 / torch 2.1
/ accelerate 0.34 and the CPU test stack's transformers 5.x / torch 2.13 run one recipe.

Device and framework differences are recipe/facade.py's; this module only papers over renames
and gaps between releases. Its one patch is applied here, once, when the module is imported.
"""

from __future__ import annotations

import importlib.metadata
import inspect
import platform

import torch

from recipe.errors import ConfigError

# accelerate 0.34 (the images) calls torch.cpu.set_device on multi-CPU runs; torch 2.1 lacks it,
# torch >= 2.2 has it as a no-op: add that same no-op
if not hasattr(torch.cpu, "set_device"):
    torch.cpu.set_device = lambda device: None

VERSIONED_DISTRIBUTIONS = ("torch", "torch_npu", "transformers", "openmind", "datasets", "accelerate",
                           "swanlab", "numpy")


# Settings of the tutorial that newer transformers dropped, with the value that meant "default".
NO_OP_SETTINGS = {"half_precision_backend": "auto"}


def training_arguments(TrainingArguments, settings: dict):
    """Build TrainingArguments from modern setting names on transformers 4.45 and 5.x alike."""
    try:
        return TrainingArguments(**compatible_training_settings(TrainingArguments, settings))
    except ValueError as err:   # a value the Trainer refuses, e.g. save_strategy=sometimes
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise ConfigError(f"TrainingArguments refused the train settings: {first}",
                          fix="correct that train.* setting (--set train.KEY=VALUE or the profile)") from None


def compatible_training_settings(TrainingArguments, settings: dict) -> dict:
    """The settings renamed for the installed transformers; ConfigError for a name it lacks."""
    accepted = inspect.signature(TrainingArguments.__init__).parameters
    settings = dict(settings)
    if "eval_strategy" in settings and "eval_strategy" not in accepted and "evaluation_strategy" in accepted:
        settings["evaluation_strategy"] = settings.pop("eval_strategy")  # transformers < 4.41
    if settings.get("group_by_length") and "group_by_length" not in accepted:
        settings.pop("group_by_length")
        settings["train_sampling_strategy"] = "group_by_length"   # transformers 5.x
    elif "group_by_length" in settings and not settings["group_by_length"] and "group_by_length" not in accepted:
        settings.pop("group_by_length")
    for name, no_op in NO_OP_SETTINGS.items():  # removed in 5.x where its only value did nothing
        if name not in accepted and settings.get(name) == no_op:
            settings.pop(name)
    unknown = sorted(set(settings) - set(accepted))
    if unknown:
        raise ConfigError(f"train.{unknown[0]} is not a TrainingArguments setting in this transformers "
                          f"({_version('transformers')})", fix="remove it or check its name in the Trainer docs")
    return settings


def _version(dist: str) -> str | None:
    for name in (dist, dist.replace("_", "-")):
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def framework_versions() -> dict:
    versions = {"python": platform.python_version()}
    versions.update({dist: _version(dist) for dist in VERSIONED_DISTRIBUTIONS})
    return versions
