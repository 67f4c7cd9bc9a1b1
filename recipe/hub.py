"""Where the tutorial's model and data come from: their hub ids per API, the pinned revisions, and
how a `make fetch` folder names what it holds. No device or framework here (loading a dataset
from a hub is the framework's part: recipe.facade.load_hub_dataset)."""

from __future__ import annotations

from pathlib import Path

# Logical names of the tutorial's model and data -> the hub id each API loads them from.
HUB_IDS = {
    "bert-base-cased": {"openmind": "PyTorch-NPU/bert_base_cased", "transformers": "google-bert/bert-base-cased"},
    "glue-cola": {"openmind": "AI_Connect/glue", "transformers": "nyu-mll/glue"},
}
GLUE_TASK = "cola"
# The hub revision (commit) each API loads, so `make fetch` and the recipe read the same bytes: the
# one place both use. None = the repo's default branch, where no revision could be confirmed from
# here (no hub is reachable from the kit's build machine; never write a hash that was not seen).
HUB_REVISIONS = {
    # google-bert/bert-base-cased: the snapshot commit found in public HF caches
    # (models--google-bert--bert-base-cased/snapshots/cd5ef92a...); `make fetch` fails if it is gone.
    "bert-base-cased": {"openmind": None, "transformers": "cd5ef92a9fb2f889e972770a36d4ed042daf221e"},
    "glue-cola": {"openmind": None, "transformers": None},
}
FETCHED_MARKER = ".fetched"   # recipe.tools.fetch writes it last into a download, holding the hub id


def hub_id(logical: str, api: str) -> str:
    return HUB_IDS.get(logical, {}).get(api, logical)


def hub_revision(repo_id: str) -> str | None:
    """The pinned revision of a hub id (of either API), or None."""
    for logical, ids in HUB_IDS.items():
        for api, known in ids.items():
            if known == repo_id:
                return HUB_REVISIONS.get(logical, {}).get(api)
    return None


def logical_name(source: str) -> str | None:
    """Which of the tutorial's model/data `source` is: its logical name, a hub id of it, or a
    directory `make fetch` downloaded it into (named by FETCHED_MARKER); None for anything else."""
    marker = Path(source).expanduser() / FETCHED_MARKER
    if marker.is_file():
        source = marker.read_text().strip()
    for logical, ids in HUB_IDS.items():
        if source == logical or source in ids.values():
            return logical
    return None
