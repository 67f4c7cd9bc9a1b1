"""Download bert-base-cased and GLUE CoLA once into a cache directory, for hosts without internet.

    python -m recipe.tools.fetch --cache DIR [--api openmind|transformers|both]

Per API it writes DIR/models/<api>/bert-base-cased/ (a snapshot of the hub repo) and
DIR/data/<api>/glue-cola/{train,validation}-00000-of-00001.parquet, then prints the
`--model ... --data ...` arguments that make the recipe read them instead of the hub.
`make fetch` runs it in an image with the kit cache volume at /cache. On an air-gapped host:
fetch on a connected machine, copy the cache directory over, pass the printed paths.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

from recipe import facade, hub
from recipe.errors import DataError, KitError, ModelError

MODEL = "bert-base-cased"
DATA = "glue-cola"
SPLITS = ("train", "validation")  # test has no labels (-1): the recipe never reads it
# The hub repos also carry TensorFlow, Flax, Rust and CoreML copies of the weights.
IGNORE = ["*.h5", "*.msgpack", "*.ot", "coreml/*", "*.mlmodel", "*.onnx"]
DONE = hub.FETCHED_MARKER  # written last: a directory without it is an interrupted download


def model_dir(cache: Path, api: str) -> Path:
    return cache / "models" / api / MODEL


def data_dir(cache: Path, api: str) -> Path:
    return cache / "data" / api / DATA


def snapshot(api: str, repo_id: str, target: Path) -> None:
    """The hub client of each API downloads the repo's files into target."""
    if api == "openmind":
        from openmind_hub import snapshot_download
    else:
        from huggingface_hub import snapshot_download
    snapshot_download(repo_id, local_dir=str(target), ignore_patterns=IGNORE, revision=hub.hub_revision(repo_id))


def save_dataset(api: str, repo_id: str, target: Path) -> None:
    """GLUE CoLA through the recipe's own loader (OmDataset or datasets), saved as parquet."""
    loaded = facade.load_hub_dataset(api, repo_id)
    for split in SPLITS:
        loaded[split].to_parquet(str(target / f"{split}-00000-of-00001.parquet"))


def _fetch_once(target: Path, download, error, what: str, api: str, repo_id: str) -> Path:
    if (target / DONE).is_file():
        print(f"{what} ({api}): already in {target}")
        return target
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    try:
        download(api, repo_id, partial)
    # The hub clients raise requests, OSError, HTTP and their own error types alike.
    except Exception as err:  # noqa: BLE001 - any hub failure: one line, the partial removed
        shutil.rmtree(partial, ignore_errors=True)
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise error(f"could not fetch {repo_id} from the {api} hub: {first}",
                    fix="run `make fetch` on a machine that reaches the hub, then copy its cache directory "
                        "(KIT_CACHE, default .cache/kit) to this host") from None
    (partial / DONE).write_text(f"{repo_id}\n")
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)
    print(f"{what} ({api}): {repo_id} -> {target}")
    return target


def fetch(cache: Path, api: str) -> tuple[Path, Path]:
    """Model dir and data dir of one API, downloaded unless already complete."""
    model_id = hub.HUB_IDS[MODEL][api]
    data_id = hub.HUB_IDS[DATA][api]
    model = _fetch_once(model_dir(cache, api), snapshot, ModelError, "model", api, model_id)
    data = _fetch_once(data_dir(cache, api), save_dataset, DataError, "data", api, data_id)
    return model, data


def allow_openmind_hub_writes(cache: Path) -> None:
    """openmind_hub refuses local_dir outside /tmp and ~ unless listed here (read at its import)."""
    listed = [p for p in os.environ.get("HUB_WHITE_LIST_PATHS", "").split(",") if p]
    if str(cache) not in listed:
        os.environ["HUB_WHITE_LIST_PATHS"] = ",".join([*listed, str(cache)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m recipe.tools.fetch", description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", required=True, type=Path, help="cache directory (/cache in the images)")
    parser.add_argument("--api", default="both", choices=("openmind", "transformers", "both"),
                        help="whose hub to download from (default: both)")
    args = parser.parse_args(argv)
    cache = args.cache.expanduser().resolve()
    apis = ("openmind", "transformers") if args.api == "both" else (args.api,)
    allow_openmind_hub_writes(cache)
    try:
        fetched = {api: fetch(cache, api) for api in apis}
    except KitError as err:
        print(err.render(), file=sys.stderr)
        return err.exit_code
    print("\npass these to the recipe (paths inside the container when run by `make fetch`):")
    for api, (model, data) in fetched.items():
        print(f"  --api {api} --model {model} --data {data}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
