"""Which runs may be compared number for number.

Two runs are comparable when they trained the same recipe on the same data with the same
effective batch and the same EFFECTIVE precision (manifest `effective.precision`: what ran, not
what the profile asked for). A few config keys do not change what is measured, so they are left
out of the comparison (IGNORED_CONFIG_KEYS, dotted paths into the recipe's resolved config; a
section name drops the whole section). Numbers compare by value (`--epochs 3` is the profile's 3).

The model and the data are compared by what the run used, never by where they lay: two servers
fetch them to different paths. The data by the sha256 of its examples (manifest `data.sha256`),
the model by its identity (manifest `identity.model`: the tutorial's name of a hub id or a
`make fetch` folder; else the sha256 of its config and weight files, `model_fingerprint`). The
paths stay in the record (`config.model`, `config.data`) and in the report, not in the verdict.

Some differences leave runs comparable but are noted (`Comparability.notes`): different CPU
thread counts (manifest `threads`) make the runs not bit-comparable (float sums are reduced in
another order), a CPU binding (manifest `cpu_binding`, docker/entrypoint.sh's KIT_CPU_BINDING)
changes timings, and the same named model from other weight files (the openMind and the HF hub's
copies of bert-base-cased) is the same model in other bytes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from recipe import hub
from recipe.config import config_sha256, differences

TINY_MODEL = "tiny-bert"   # recipe.model.TINY (not imported: it would pull in torch and transformers)
from report.records import Run

IGNORED_CONFIG_KEYS = (
    "train.seed",  # seed stability is measured by varying exactly this (`--seed`)
    "train.data_seed",  # shuffling order only, the other seed the Trainer knows
    "train.output_dir", "train.logging_dir", "train.run_name",  # where and under which name it was written
    "train.report_to",  # tracking only
    "tracking",  # SwanLab project/mode: tracking only, no effect on training
    "description",  # free text of the profile
    "model", "data",  # where the model and the data lay on this host: compared by identity instead (above)
)
# Not ignored on purpose: smoke_data.seed (different generated data; the data sha256 differs too),
# save_*/dataloader_* (they change the time measured), everything else.


# What the profile ASKS for; when both manifests record what ran (`effective`), that is compared instead.
REQUESTED_PRECISION_KEYS = ("precision", "train.fp16", "train.bf16")


def comparable_config(config: dict, ignored=IGNORED_CONFIG_KEYS) -> dict:
    """A deep copy of the config without the ignored keys."""
    reduced = json.loads(json.dumps(config))
    for dotted in ignored:
        *parents, leaf = dotted.split(".")
        node = reduced
        for part in parents:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(leaf, None)
    return reduced


def comparable_config_sha256(config: dict, ignored=IGNORED_CONFIG_KEYS) -> str:
    # The manifest's config_sha256, over the reduced config.
    return config_sha256(comparable_config(config, ignored))


def config_differences(reference: dict, other: dict, ignored=IGNORED_CONFIG_KEYS) -> list[str]:
    """Dotted keys whose values differ (ignored keys excluded), as Markdown code spans so that
    record values are shown literally, e.g. '`train.learning_rate: 2e-05 → 0`'."""
    return [f"`{key}: {old} → {new}`"
            for key, old, new in differences(comparable_config(reference, ignored), comparable_config(other, ignored))]


def model_identity(run: Run) -> str:
    """What model the run trained, wherever it lay: the manifest's `identity.model`; for older
    records the tutorial's name behind the fetched folder's hub id or the configured name; else
    the sha256 of its files; else the configured source as given."""
    manifest = run.manifest
    named = (manifest.get("identity") or {}).get("model")
    if named:
        return str(named)
    fingerprint = manifest.get("model_fingerprint") or {}
    source = str((manifest.get("config") or {}).get("model"))
    if source == TINY_MODEL:   # built from the config by the recipe: its weights follow the seed
        return source
    for candidate in (fingerprint.get("hub_id"), source):
        logical = hub.logical_name(str(candidate)) if candidate else None
        if logical:
            return logical
    return f"files sha256 {str(fingerprint['sha256'])[:12]}" if fingerprint.get("sha256") else source


def model_files_sha256(run: Run):
    return (run.manifest.get("model_fingerprint") or {}).get("sha256")


@dataclass
class Comparability:
    comparable: bool
    reasons: list[str]  # empty when comparable
    notes: list[str] = field(default_factory=list)  # differences that leave the runs comparable


def effective_precision(run: Run):
    return (run.manifest.get("effective") or {}).get("precision")


def requested_precision(run: Run) -> str:
    config = run.manifest.get("config") or {}
    train = config.get("train") or {}
    if "precision" in config:
        return str(config["precision"])
    return "bf16" if train.get("bf16") else "fp16" if train.get("fp16") else "fp32"


def precision_shown(run: Run) -> str:
    """'fp32', or 'bf16 → fp32' (requested → effective) when the device changed the request."""
    effective, requested = effective_precision(run), requested_precision(run)
    if effective is None:
        return f"{requested} (requested; effective not recorded)"
    return effective if effective == requested else f"{requested} → {effective}"


def threads(run: Run) -> tuple | None:
    """(intra_op, inter_op) from manifest `threads`, None when the record predates it."""
    record = run.manifest.get("threads")
    if not isinstance(record, dict):
        return None
    return record.get("intra_op"), record.get("inter_op")


def cpu_binding(run: Run):
    return run.manifest.get("cpu_binding") or None


def _binding_shown(binding) -> str:
    return "none" if binding is None else f"`{json.dumps(binding, sort_keys=True)}`"


def notes_for(reference: Run, run: Run) -> list[str]:
    notes = []
    ref_threads, run_threads = threads(reference), threads(run)
    if ref_threads is not None and run_threads is not None and ref_threads != run_threads:
        notes.append(f"not bit-comparable: CPU threads (intra_op, inter_op) {ref_threads[0]}, {ref_threads[1]} → "
                     f"{run_threads[0]}, {run_threads[1]} (float sums reduce in another order; timings differ too)")
    ref_binding, binding = cpu_binding(reference), cpu_binding(run)
    if run is not reference and ref_binding != binding:
        notes.append(f"CPU binding differs: {_binding_shown(ref_binding)} → {_binding_shown(binding)}: "
                     "binding cores changes timings")
    elif binding is not None:
        notes.append(f"CPU binding {_binding_shown(binding)}: binding cores changes timings")
    run_p = precision_shown(run)
    if "→" in run_p and effective_precision(run) == effective_precision(reference):
        notes.append(f"precision requested → effective: {run_p} (compared by what ran, {effective_precision(run)})")
    ref_files, files = model_files_sha256(reference), model_files_sha256(run)
    if run is not reference and model_identity(reference) == model_identity(run) != TINY_MODEL and ref_files \
            and files and ref_files != files:
        notes.append(f"same model ({model_identity(run)}) from other files: fingerprint {ref_files[:12]} → "
                     f"{files[:12]} (another hub's copy?); its initial weights may differ")
    return notes


def check_against(reference: Run, run: Run) -> Comparability:
    """Is `run` comparable with `reference` (the first run given to compare)?"""
    notes = notes_for(reference, run)
    if run is reference:
        return Comparability(True, [], notes)
    reasons = []
    ref_cfg, cfg = reference.manifest.get("config") or {}, run.manifest.get("config") or {}
    ignored = IGNORED_CONFIG_KEYS
    ref_eff, run_eff = effective_precision(reference), effective_precision(run)
    if ref_eff is not None and run_eff is not None:
        # Both record what ran: compare that, not the request (fast asks bf16, a CPU runs fp32).
        ignored = IGNORED_CONFIG_KEYS + REQUESTED_PRECISION_KEYS
        if ref_eff != run_eff:
            reasons.append(f"effective precision differs ({precision_shown(reference)} vs {precision_shown(run)})")
    diffs = config_differences(ref_cfg, cfg, ignored)
    if diffs:
        shown = "; ".join(diffs[:4]) + (f"; … {len(diffs) - 4} more" if len(diffs) > 4 else "")
        reasons.append(f"config differs ({shown})")
    ref_model, model = model_identity(reference), model_identity(run)
    if ref_model != model:
        reasons.append(f"model differs ({ref_model} → {model})")
    ref_data, data = reference.manifest.get("data") or {}, run.manifest.get("data") or {}
    if ref_data.get("sha256") != data.get("sha256"):
        reasons.append(
            f"data sha256 differs ({str(ref_data.get('sha256'))[:12]} → {str(data.get('sha256'))[:12]})"
        )
    if reference.manifest.get("effective_batch") != run.manifest.get("effective_batch"):
        reasons.append(
            "effective batch differs "
            f"({reference.manifest.get('effective_batch')} → {run.manifest.get('effective_batch')})"
        )
    if not run.complete:
        reasons.append("run incomplete (no summary.json with status complete)")
    return Comparability(not reasons, reasons, notes)


def check_all(runs: list[Run]) -> dict[str, Comparability]:
    """Per run label; the first run is the reference (an incomplete reference is still flagged)."""
    result = {run.label: check_against(runs[0], run) for run in runs}
    if not runs[0].complete:
        result[runs[0].label] = Comparability(False, ["run incomplete (no summary.json with status complete)"],
                                              result[runs[0].label].notes)
    return result
