"""Which runs may be compared number for number.

Two runs are comparable when they trained the same recipe on the same data with the same
effective batch. A few config keys do not change what is measured, so they are left out of the
comparison (IGNORED_CONFIG_KEYS, dotted paths into the recipe's resolved config; a section name
drops the whole section).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from recipe.config import config_sha256
from report.records import Run

IGNORED_CONFIG_KEYS = (
    "train.seed",  # seed stability is measured by varying exactly this (`--seed`)
    "train.data_seed",  # shuffling order only, the other seed the Trainer knows
    "train.output_dir", "train.logging_dir", "train.run_name",  # where and under which name it was written
    "train.report_to",  # tracking only
    "tracking",  # SwanLab project/mode: tracking only, no effect on training
    "description",  # free text of the profile
)
# Not ignored on purpose: smoke_data.seed (different generated data; the data sha256 differs too),
# save_*/dataloader_* (they change the time measured), everything else.


def comparable_config(config: dict) -> dict:
    """A deep copy of the config without the ignored keys."""
    reduced = json.loads(json.dumps(config))
    for dotted in IGNORED_CONFIG_KEYS:
        *parents, leaf = dotted.split(".")
        node = reduced
        for part in parents:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(leaf, None)
    return reduced


def comparable_config_sha256(config: dict) -> str:
    # The manifest's config_sha256, over the reduced config.
    return config_sha256(comparable_config(config))


def _flatten(node, prefix=""):
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            out.update(_flatten(value, f"{prefix}{key}."))
        return out
    return {prefix.rstrip("."): node}


def config_differences(reference: dict, other: dict) -> list[str]:
    """Dotted keys whose values differ (ignored keys excluded), as Markdown code spans so that
    record values are shown literally, e.g. '`train.learning_rate: 2e-05 → 0`'."""
    a, b = _flatten(comparable_config(reference)), _flatten(comparable_config(other))
    diffs = []
    for key in sorted(set(a) | set(b)):
        if a.get(key, "<absent>") != b.get(key, "<absent>"):
            diffs.append(f"`{key}: {a.get(key, '<absent>')} → {b.get(key, '<absent>')}`")
    return diffs


@dataclass
class Comparability:
    comparable: bool
    reasons: list[str]  # empty when comparable


def check_against(reference: Run, run: Run) -> Comparability:
    """Is `run` comparable with `reference` (the first run given to compare)?"""
    if run is reference:
        return Comparability(True, [])
    reasons = []
    ref_cfg, cfg = reference.manifest.get("config") or {}, run.manifest.get("config") or {}
    if comparable_config_sha256(ref_cfg) != comparable_config_sha256(cfg):
        diffs = config_differences(ref_cfg, cfg)
        shown = "; ".join(diffs[:4]) + (f"; … {len(diffs) - 4} more" if len(diffs) > 4 else "")
        reasons.append(f"config differs ({shown})")
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
    return Comparability(not reasons, reasons)


def check_all(runs: list[Run]) -> dict[str, Comparability]:
    """Per run label; the first run is the reference (an incomplete reference is still flagged)."""
    result = {run.label: check_against(runs[0], run) for run in runs}
    if not runs[0].complete:
        result[runs[0].label] = Comparability(False, ["run incomplete (no summary.json with status complete)"])
    return result
