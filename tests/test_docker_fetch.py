"""`make fetch` = `python -m recipe.tools.fetch`: hub clients replaced by fakes that write what the hubs serve."""

from __future__ import annotations

import os
import sys
import types
from pathlib import Path

import datasets
import pytest

from recipe import data, facade, hub
from recipe.tools import fetch

ROWS = {"train": [("The cat sat.", 1), ("Cat the sat.", 0), ("Dogs bark.", 1)],
        "validation": [("Birds fly.", 1), ("Fly birds the.", 0)],
        "test": [("Unlabelled.", -1)]}


class FakeHubs:
    """Both hub clients and both dataset loaders, recording every call."""

    def __init__(self, fail_with: Exception | None = None):
        self.calls: list[tuple] = []
        self.fail_with = fail_with

    def snapshot(self, client: str):
        def snapshot_download(repo_id, *, local_dir, ignore_patterns=None, **_):
            self.calls.append((client, repo_id, local_dir, tuple(ignore_patterns or ())))
            if self.fail_with:
                raise self.fail_with
            for name in ("config.json", "vocab.txt", "model.safetensors"):
                (Path(local_dir) / name).write_text("{}")
            return local_dir
        return snapshot_download

    def load_hub_dataset(self, api, repo_id, task=hub.GLUE_TASK):
        self.calls.append(("dataset", api, repo_id, task))
        return datasets.DatasetDict({
            split: datasets.Dataset.from_dict({"sentence": [s for s, _ in rows], "label": [y for _, y in rows],
                                               "idx": list(range(len(rows)))})
            for split, rows in ROWS.items()})


@pytest.fixture
def hubs(monkeypatch):
    fake = FakeHubs()
    monkeypatch.setitem(sys.modules, "openmind_hub",
                        types.SimpleNamespace(snapshot_download=fake.snapshot("openmind_hub")))
    # the real module with one function replaced: transformers imports more of it lazily, mid-test
    import huggingface_hub
    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake.snapshot("huggingface_hub"))
    monkeypatch.setattr(facade, "load_hub_dataset", fake.load_hub_dataset)
    monkeypatch.delenv("HUB_WHITE_LIST_PATHS", raising=False)
    return fake


def test_both_apis_download_the_tutorial_ids_into_the_cache(hubs, tmp_path, capsys):
    assert fetch.main(["--cache", str(tmp_path)]) == 0
    models = [(c[0], c[1], c[2]) for c in hubs.calls if c[0] != "dataset"]
    assert models == [
        ("openmind_hub", "PyTorch-NPU/bert_base_cased", f"{tmp_path}/models/openmind/bert-base-cased.partial"),
        ("huggingface_hub", "google-bert/bert-base-cased", f"{tmp_path}/models/transformers/bert-base-cased.partial"),
    ]
    assert [c for c in hubs.calls if c[0] == "dataset"] == [("dataset", "openmind", "AI_Connect/glue", "cola"),
                                                            ("dataset", "transformers", "nyu-mll/glue", "cola")]
    assert all("*.h5" in c[3] for c in hubs.calls if c[0] != "dataset")  # no TF/Flax copies of the weights
    out = capsys.readouterr().out
    for api in ("openmind", "transformers"):
        model, data_dir = tmp_path / "models" / api / "bert-base-cased", tmp_path / "data" / api / "glue-cola"
        assert (model / "config.json").is_file() and (model / fetch.DONE).is_file()
        assert f"--api {api} --model {model} --data {data_dir}" in out
        assert not list(tmp_path.rglob("*.partial"))


def test_the_saved_data_is_what_the_recipe_reads_as_parquet(hubs, tmp_path):
    assert fetch.main(["--cache", str(tmp_path), "--api", "transformers"]) == 0
    target = tmp_path / "data" / "transformers" / "glue-cola"
    kind, files, _ = data.resolve_files(str(target))
    assert kind == "parquet" and sorted(p.name for p in target.glob("*.parquet")) == [
        "train-00000-of-00001.parquet", "validation-00000-of-00001.parquet"]  # test: no labels, not saved
    rows = {split: [r for f in paths for r in data.read_parquet(f)] for split, paths in files.items()}
    assert [(r["sentence"], r["label"]) for r in rows["train"]] == ROWS["train"]
    assert [(r["sentence"], r["label"]) for r in rows["validation"]] == ROWS["validation"]
    assert not any(c[1] == "openmind" for c in hubs.calls if c[0] == "dataset")


def test_second_fetch_downloads_nothing(hubs, tmp_path, capsys):
    assert fetch.main(["--cache", str(tmp_path), "--api", "openmind"]) == 0
    calls = len(hubs.calls)
    assert fetch.main(["--cache", str(tmp_path), "--api", "openmind"]) == 0
    assert len(hubs.calls) == calls and "already in" in capsys.readouterr().out


def test_openmind_hub_may_write_into_the_cache(hubs, tmp_path, monkeypatch):
    monkeypatch.setenv("HUB_WHITE_LIST_PATHS", "/data")
    assert fetch.main(["--cache", str(tmp_path), "--api", "openmind"]) == 0
    assert os.environ["HUB_WHITE_LIST_PATHS"] == f"/data,{tmp_path}"


def test_unreachable_hub_is_one_message_with_the_air_gap_fix_and_no_partial_download(hubs, tmp_path, capsys):
    hubs.fail_with = ConnectionError("HTTPSConnectionPool(host='huggingface.co', port=443): Max retries exceeded\n"
                                     "Caused by NameResolutionError")
    assert fetch.main(["--cache", str(tmp_path), "--api", "transformers"]) == 5  # ModelError
    err = capsys.readouterr().err
    assert err.splitlines()[0] == ("model error: could not fetch google-bert/bert-base-cased from the transformers "
                                   "hub: HTTPSConnectionPool(host='huggingface.co', port=443): Max retries exceeded")
    assert "make fetch" in err and "KIT_CACHE" in err and "Traceback" not in err
    assert not (tmp_path / "models" / "transformers" / "bert-base-cased").exists()
    assert not list(tmp_path.rglob("*.partial"))


def test_dataset_failure_is_a_data_error(hubs, tmp_path, monkeypatch, capsys):
    def offline(api, repo_id, task="cola"):
        raise OSError(f"Couldn't reach '{repo_id}' on the Hub (LocalEntryNotFoundError)")
    monkeypatch.setattr(facade, "load_hub_dataset", offline)
    assert fetch.main(["--cache", str(tmp_path), "--api", "transformers"]) == 4
    assert "data error: could not fetch nyu-mll/glue from the transformers hub" in capsys.readouterr().err
    assert (tmp_path / "models" / "transformers" / "bert-base-cased" / fetch.DONE).is_file()  # the model stays
