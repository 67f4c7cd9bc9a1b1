"""Every data source, loaded from files the tests write, and every malformed-input case."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from recipe import data, facade
from recipe.errors import DataError
from recipe.smoke_data import write_smoke_dataset

TRAIN = [("Bill saw the dog .", 1), ("saw dog the Bill .", 0), ("The cat slept .", 1)]
DEV = [("Mary read a book .", 1), ("book a read Mary .", 0)]
OOD = [("They sang .", 1)]


def write_tsv(path, rows, source="gj04"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{source}\t{label}\t{'' if label else '*'}\t{text}\n" for text, label in rows))


def cola_release(root):
    write_tsv(root / "raw" / "in_domain_train.tsv", TRAIN)
    write_tsv(root / "raw" / "in_domain_dev.tsv", DEV)
    write_tsv(root / "raw" / "out_of_domain_dev.tsv", OOD, source="clc95")
    return root


def sentences(dataset, split):
    return list(zip(dataset[split]["sentence"], dataset[split]["label"]))


def test_cola_tsv_release_uses_both_dev_files_as_validation(tmp_path):
    dataset, info = data.load_cola(str(cola_release(tmp_path / "cola")), "transformers", tmp_path)
    assert sentences(dataset, "train") == TRAIN
    assert sentences(dataset, "validation") == DEV + OOD  # in-domain + out-of-domain, like GLUE's 1 043
    assert info.kind == "tsv"
    assert set(info.files) == {"raw/in_domain_train.tsv", "raw/in_domain_dev.tsv", "raw/out_of_domain_dev.tsv"}
    assert info.rows == {"train": 3, "validation": 3}
    assert info.majority_baseline == pytest.approx(2 / 3, abs=1e-4)
    assert dataset["train"]["idx"] == [0, 1, 2]


def test_glue_parquet_directory(tmp_path):
    root = tmp_path / "glue" / "cola"
    root.mkdir(parents=True)
    for split, rows in (("train", TRAIN), ("validation", DEV + OOD), ("test", [("x .", -1)])):
        table = pa.table({"sentence": [s for s, _ in rows], "label": [lab for _, lab in rows],
                          "idx": list(range(len(rows)))})
        pq.write_table(table, root / f"{split}-00000-of-00001.parquet")
    dataset, info = data.load_cola(str(tmp_path / "glue"), "transformers", tmp_path)
    assert info.kind == "parquet"
    assert sentences(dataset, "train") == TRAIN and sentences(dataset, "validation") == DEV + OOD


def test_same_examples_hash_equal_across_formats(tmp_path):
    _, from_tsv = data.load_cola(str(cola_release(tmp_path / "tsv")), "transformers", tmp_path)
    jsonl = tmp_path / "jsonl"
    jsonl.mkdir()
    for split, rows in (("train", TRAIN), ("validation", DEV + OOD)):
        (jsonl / f"{split}.jsonl").write_text("".join(json.dumps({"sentence": s, "label": lab}) + "\n"
                                                      for s, lab in rows))
    _, from_jsonl = data.load_cola(str(jsonl), "transformers", tmp_path)
    assert from_jsonl.kind == "jsonl"
    assert from_tsv.sha256 == from_jsonl.sha256  # content hash: compare can match runs across formats


def test_csv_directory_with_quoted_commas(tmp_path):
    (tmp_path / "train.csv").write_text('sentence,label\n"Well, he left .",1\nleft he .,0\n')
    (tmp_path / "validation.csv").write_text("sentence,label\nShe left .,1\n")
    dataset, info = data.load_cola(str(tmp_path), "transformers", tmp_path)
    assert info.kind == "csv"
    assert sentences(dataset, "train") == [("Well, he left .", 1), ("left he .", 0)]


def test_explicit_split_files(tmp_path):
    write_tsv(tmp_path / "a.tsv", TRAIN)
    (tmp_path / "b.jsonl").write_text(json.dumps({"sentence": "He ran .", "label": 1}) + "\n")
    dataset, info = data.load_cola(f"train={tmp_path / 'a.tsv'},validation={tmp_path / 'b.jsonl'}",
                                   "transformers", tmp_path)
    assert info.kind == "files"
    assert sentences(dataset, "validation") == [("He ran .", 1)]


@pytest.mark.parametrize("api, expected_id", [("transformers", "nyu-mll/glue"), ("openmind", "AI_Connect/glue")])
def test_hub_source_goes_through_the_api_loader(monkeypatch, tmp_path, api, expected_id):
    import datasets
    calls = []

    def fake_load(api_name, repo_id, task="cola"):
        calls.append((api_name, repo_id, task))
        return datasets.DatasetDict({
            "train": datasets.Dataset.from_dict({"sentence": [s for s, _ in TRAIN], "label": [b for _, b in TRAIN]}),
            "validation": datasets.Dataset.from_dict({"sentence": ["A b ."], "label": [1]}),
            "test": datasets.Dataset.from_dict({"sentence": ["c ."], "label": [-1]})})

    monkeypatch.setattr(facade, "load_hub_dataset", fake_load)
    dataset, info = data.load_cola("glue-cola", api, tmp_path)
    assert calls == [(api, expected_id, "cola")]
    assert info.kind == "hub" and expected_id in info.source
    assert set(dataset) == {"train", "validation"}


def test_hub_failure_is_one_clear_data_error(monkeypatch, tmp_path):
    def offline(*args, **kwargs):
        raise ConnectionError("Couldn't reach 'nyu-mll/glue' on the Hub (LocalEntryNotFoundError)")
    monkeypatch.setattr(facade, "load_hub_dataset", offline)
    with pytest.raises(DataError, match="could not load 'nyu-mll/glue'") as err:
        data.load_cola("glue-cola", "transformers", tmp_path)
    assert "make fetch" in err.value.fix


def test_generated_smoke_data_is_deterministic_and_in_cola_layout(tmp_path):
    a = write_smoke_dataset(tmp_path / "a", train=50, validation=20, seed=3)
    b = write_smoke_dataset(tmp_path / "b", train=50, validation=20, seed=3)
    for name in ("in_domain_train.tsv", "in_domain_dev.tsv", "out_of_domain_dev.tsv"):
        assert (a / "raw" / name).read_bytes() == (b / "raw" / name).read_bytes()
    for line in (a / "raw" / "in_domain_train.tsv").read_text().splitlines():
        _source, label, mark, sentence = line.split("\t")
        assert label in ("0", "1") and mark == ("" if label == "1" else "*") and sentence.endswith(".")
    train = set((a / "raw" / "in_domain_train.tsv").read_text().split("\t")[3::3])
    dev = (a / "raw" / "in_domain_dev.tsv").read_text()
    assert not any(line.split("\t")[3] in train for line in dev.splitlines())


# ---------------------------------------------------------------- malformed input: file and line named
@pytest.mark.parametrize("content, message", [
    ("gj04\t1\t\tGood .\ngj04\t1\tA sentence without the annotation column\n", r"in_domain_train.tsv:2: 3 tab-sep"),
    ("gj04\t1\t\tGood .\ngj04\t2\t\tBad label .\n", r"in_domain_train.tsv:2: label '2' is not 0 or 1"),
    ("gj04\t1\t\tGood .\n\ngj04\t0\t*\t   \n", r"in_domain_train.tsv:3: empty sentence"),
    ("", r"in_domain_train.tsv: no rows \(empty split\)"),
])
def test_malformed_tsv_names_file_and_line(tmp_path, content, message):
    root = cola_release(tmp_path / "cola")
    (root / "raw" / "in_domain_train.tsv").write_text(content)
    with pytest.raises(DataError, match=message):
        data.load_cola(str(root), "transformers", tmp_path)


def test_missing_dev_file_is_named(tmp_path):
    root = cola_release(tmp_path / "cola")
    (root / "raw" / "out_of_domain_dev.tsv").unlink()
    with pytest.raises(DataError, match=r"out_of_domain_dev.tsv: file not found"):
        data.load_cola(str(root), "transformers", tmp_path)


def test_missing_directory(tmp_path):
    with pytest.raises(DataError, match="no such file or directory"):
        data.load_cola(str(tmp_path / "nope"), "transformers", tmp_path)


def test_malformed_jsonl_and_csv(tmp_path):
    (tmp_path / "train.jsonl").write_text('{"sentence": "ok .", "label": 1}\n{"sentence": "x", \n')
    (tmp_path / "validation.jsonl").write_text('{"sentence": "ok .", "label": 1}\n')
    with pytest.raises(DataError, match=r"train.jsonl:2: not valid JSON"):
        data.load_cola(str(tmp_path), "transformers", tmp_path)
    csv_dir = tmp_path / "csv"
    csv_dir.mkdir()
    (csv_dir / "train.csv").write_text("text,label\nok .,1\n")
    (csv_dir / "validation.csv").write_text("sentence,label\nok .,1\n")
    with pytest.raises(DataError, match=r"train.csv:1: header lacks column\(s\) \['sentence'\]"):
        data.load_cola(str(csv_dir), "transformers", tmp_path)


def test_csv_row_with_more_fields_than_the_header_names_its_file_and_line(tmp_path):
    # line 3 holds an unquoted comma: three fields under a two-column header
    (tmp_path / "train.csv").write_text('sentence,label\n"Well, he left .",1\nWell, he left .,1\nok .,0\n')
    (tmp_path / "validation.csv").write_text("sentence,label\nok .,1\n")
    with pytest.raises(DataError) as caught:
        data.load_cola(str(tmp_path), "transformers", tmp_path)
    assert caught.value.message == f"{tmp_path / 'train.csv'}:3: more columns than the header has"
    assert "quote sentences that contain commas" in caught.value.render()
