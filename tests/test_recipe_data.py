"""Every data source, loaded from files the tests write, and every malformed-input case."""

from __future__ import annotations

import hashlib
import json

import datasets
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


# ---------------------------------------------------------------- every error: its exact message and fix
# (written against survivors of `make mutation`, dev/mutation.md)
def load_error(source, tmp_path, api="transformers") -> DataError:
    with pytest.raises(DataError) as caught:
        data.load_cola(source, api, tmp_path / "work")
    return caught.value


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_labels_and_sentences_are_read_as_written(tmp_path):
    write(tmp_path / "d" / "train.jsonl", '{"sentence": "A b .", "label": " 1 "}\n\n{"sentence": "b A .", "label": 0}\n')
    write(tmp_path / "d" / "validation.jsonl", '{"sentence": "C d .", "label": "0"}\n')
    dataset, info = data.load_cola(str(tmp_path / "d"), "transformers", tmp_path)
    assert dataset["train"]["label"] == [1, 0] and dataset["train"]["sentence"] == ["A b .", "b A ."]
    assert dataset["train"]["idx"] == [0, 1]
    assert info.rows == {"train": 2, "validation": 1} and info.kind == "jsonl"
    assert set(info.files) == {"train.jsonl", "validation.jsonl"}


def test_majority_baseline_is_the_larger_class_share_of_validation(tmp_path):
    write(tmp_path / "d" / "train.csv", "sentence,label\na .,1\n")
    write(tmp_path / "d" / "validation.csv", "sentence,label\na .,0\nb .,1\nc .,1\nd .,1\n")
    assert data.load_cola(str(tmp_path / "d"), "transformers", tmp_path)[1].majority_baseline == 0.75
    write(tmp_path / "e" / "train.csv", "sentence,label\na .,1\n")
    write(tmp_path / "e" / "validation.csv", "sentence,label\na .,0\nb .,0\nc .,1\n")
    assert data.load_cola(str(tmp_path / "e"), "transformers", tmp_path)[1].majority_baseline == 0.6667


def test_file_hashes_are_sha256_of_the_bytes(tmp_path):
    train = write(tmp_path / "d" / "train.csv", "sentence,label\n" + "a .,1\n" * 3)
    write(tmp_path / "d" / "validation.csv", "sentence,label\nb .,0\n")
    info = data.load_cola(str(tmp_path / "d"), "transformers", tmp_path)[1]
    assert info.files["train.csv"] == hashlib.sha256(train.read_bytes()).hexdigest()
    assert data.sha256_file(train) == hashlib.sha256(train.read_bytes()).hexdigest()


@pytest.mark.parametrize("name, text, message, fix", [
    ("train.jsonl", '{"sentence": "a ."}\n', "train.jsonl:1: needs the keys \"sentence\" and \"label\"", None),
    ("train.jsonl", '{"label": 1}\n', "train.jsonl:1: needs the keys \"sentence\" and \"label\"", None),
    ("train.jsonl", '["a .", 1]\n', "train.jsonl:1: needs the keys \"sentence\" and \"label\"", None),
    ("train.jsonl", '\n{"sentence": "a .", "label": 3}\n', "train.jsonl:2: label 3 is not 0 or 1",
     "CoLA labels are 1 (acceptable) or 0 (unacceptable)"),
    ("train.jsonl", '{"sentence": null, "label": 1}\n', "train.jsonl:1: empty sentence",
     "remove the line or fill in the sentence"),
    ("train.csv", "sentence,label\na .,1\n,0\n", "train.csv:3: empty sentence", "remove the line or fill in the sentence"),
    ("train.csv", "label\n1\n", "train.csv:1: header lacks column(s) ['sentence']",
     "the first line must name the columns, e.g. `sentence,label`"),
    ("train.csv", "", "train.csv:1: header lacks column(s) ['label', 'sentence']",
     "the first line must name the columns, e.g. `sentence,label`"),
])
def test_a_bad_line_is_named_with_its_fix(tmp_path, name, text, message, fix):
    suffix = name.split(".")[1]
    write(tmp_path / "d" / name, text)
    write(tmp_path / "d" / f"validation.{suffix}", "sentence,label\na .,1\n" if suffix == "csv"
          else '{"sentence": "a .", "label": 1}\n')
    err = load_error(str(tmp_path / "d"), tmp_path)
    assert err.message == f"{tmp_path / 'd' / name.split(':')[0]}{message.split(name)[1]}"
    assert err.fix == fix


def test_a_file_that_is_not_utf8_names_the_byte(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "train.csv").write_bytes(b"sentence,label\ncaf\xe9 .,1\n")
    write(tmp_path / "d" / "validation.csv", "sentence,label\na .,1\n")
    assert load_error(str(tmp_path / "d"), tmp_path).message == f"{tmp_path / 'd' / 'train.csv'}: not UTF-8 text (byte 18)"


def test_an_empty_split_and_an_unknown_file_type(tmp_path):
    write(tmp_path / "d" / "train.csv", "sentence,label\n")
    write(tmp_path / "d" / "validation.csv", "sentence,label\na .,1\n")
    err = load_error(str(tmp_path / "d"), tmp_path)
    assert err.message == f"{tmp_path / 'd' / 'train.csv'}: no rows (empty split)"
    assert err.fix == "every split needs at least one example"
    other = write(tmp_path / "x.txt", "a .\t1\n")
    err = load_error(f"train={other},validation={other}", tmp_path)
    assert err.message == f"{other}: unsupported file type '.txt'"
    assert err.fix == "use one of ['.csv', '.jsonl', '.parquet', '.tsv']"
    err = load_error(f"train={tmp_path / 'no.csv'},validation={tmp_path / 'no.csv'}", tmp_path)
    assert err.message == f"{tmp_path / 'no.csv'}: file not found" and err.fix == "check the --data path"


@pytest.mark.parametrize("source, message, fix", [
    ("train=a.csv", "--data 'train=a.csv': both train= and validation= are needed", None),
    ("train=a.csv,test=b.csv", "--data 'train=a.csv,test=b.csv': unknown split 'test'",
     "write train=PATH,validation=PATH"),
])
def test_explicit_split_files_must_name_both_splits(tmp_path, source, message, fix):
    err = load_error(source, tmp_path)
    assert err.message == message and err.fix == fix


def test_a_directory_without_cola_data_and_a_single_file(tmp_path):
    (tmp_path / "empty").mkdir()
    err = load_error(str(tmp_path / "empty"), tmp_path)
    assert err.message == f"--data {tmp_path / 'empty'}: no CoLA data recognised in this directory"
    assert err.fix == "expected raw/in_domain_train.tsv, train-*.parquet, or train.jsonl / train.csv"
    single = write(tmp_path / "one.csv", "sentence,label\na .,1\n")
    err = load_error(str(single), tmp_path)
    assert err.message == f"--data {single}: a single file has only one split"
    assert err.fix == f"write --data train={single},validation=OTHER_FILE"
    err = load_error(str(tmp_path / "missing"), tmp_path)
    assert err.fix == "pass an existing directory, `smoke`, `glue-cola` or a hub id like nyu-mll/glue"


def parquet(path, sentences, labels, names=("sentence", "label")):
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({names[0]: sentences, names[1]: labels}), path)


def test_tsv_release_without_a_raw_folder_is_found_too(tmp_path):
    row = "gj04\t1\t\tA b .\n"
    for name in ("in_domain_train.tsv", "in_domain_dev.tsv", "out_of_domain_dev.tsv"):
        write(tmp_path / "cola" / name, row)
    _, info = data.load_cola(str(tmp_path / "cola"), "transformers", tmp_path)
    assert info.kind == "tsv" and info.rows == {"train": 1, "validation": 2}


def test_parquet_errors_name_the_file_and_row(tmp_path):
    parquet(tmp_path / "p" / "data" / "train-00000.parquet", ["a .", "b ."], [1, 5])
    parquet(tmp_path / "p" / "data" / "validation-00000.parquet", ["c ."], [0])
    err = load_error(str(tmp_path / "p"), tmp_path)
    assert err.message == f"{tmp_path / 'p' / 'data' / 'train-00000.parquet'} row:2: label 5 is not 0 or 1"
    parquet(tmp_path / "q" / "train-0.parquet", ["a ."], [1], names=("text", "label"))
    parquet(tmp_path / "q" / "validation-0.parquet", ["a ."], [1])
    err = load_error(str(tmp_path / "q"), tmp_path)
    assert err.message == f"{tmp_path / 'q' / 'train-0.parquet'}: lacks column(s) ['sentence']; has ['text', 'label']"
    write(tmp_path / "r" / "train-0.parquet", "not parquet")
    parquet(tmp_path / "r" / "validation-0.parquet", ["a ."], [1])
    assert load_error(str(tmp_path / "r"), tmp_path).message.startswith(
        f"{tmp_path / 'r' / 'train-0.parquet'}: not a readable parquet file (")
    parquet(tmp_path / "s" / "train-0.parquet", ["a ."], [1])
    err = load_error(str(tmp_path / "s"), tmp_path)
    assert err.message == f"--data {tmp_path / 's'}: no validation-*.parquet file among ['train-0.parquet']"


@pytest.mark.parametrize("source, local", [
    ("smoke", False), ("glue-cola", False), ("nyu-mll/glue", False), ("AI_Connect/glue", False),
    ("./cola", True), ("/data/cola", True), ("~/cola", True), ("data/cola/raw", True), ("cola", True),
])
def test_what_counts_as_a_local_source(source, local):
    assert data.is_local(source) is local


def test_an_existing_owner_name_directory_is_local_not_a_hub_id(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "nyu-mll" / "glue").mkdir(parents=True)
    assert data.is_local("nyu-mll/glue") is True


def hub(monkeypatch, splits):
    monkeypatch.setattr(facade, "load_hub_dataset", lambda api, repo_id, task="cola": datasets.DatasetDict(
        {name: datasets.Dataset.from_dict(rows) for name, rows in splits.items()}))


def test_hub_data_is_validated_like_files(monkeypatch, tmp_path):
    hub(monkeypatch, {"train": {"sentence": ["a .", "b ."], "label": [1, 0]}})
    assert load_error("glue-cola", tmp_path).message == \
        "hub dataset 'nyu-mll/glue' has no 'validation' split (has ['train'])"
    hub(monkeypatch, {"train": {"sentence": ["a ."], "label": [1]}, "validation": {"sentence": [], "label": []}})
    assert load_error("glue-cola", tmp_path).message == "hub dataset 'nyu-mll/glue': empty validation split"
    hub(monkeypatch, {"train": {"sentence": ["a .", "b ."], "label": [1, 7]},
                      "validation": {"sentence": ["a ."], "label": [1]}})
    assert load_error("glue-cola", tmp_path).message == "nyu-mll/glue:train row:2: label 7 is not 0 or 1"
    hub(monkeypatch, {"train": {"sentence": ["a ."], "label": [1]}, "validation": {"sentence": ["b ."], "label": [0]}})
    _, info = data.load_cola("someone/cola-copy", "transformers", tmp_path)
    assert info.source == "someone/cola-copy" and info.kind == "hub"


def test_the_content_hash_is_over_both_splits_in_order(tmp_path):
    a = {"train": [{"sentence": "a .", "label": 1}], "validation": [{"sentence": "b .", "label": 0}]}
    b = {"train": [{"sentence": "b .", "label": 0}], "validation": [{"sentence": "a .", "label": 1}]}
    assert data.content_sha256(a) != data.content_sha256(b)
    assert data.content_sha256(a) == data.content_sha256(json.loads(json.dumps(a)))


# --------------------------------------------------------------------------- exact messages and the smoke source
def test_each_reader_error_carries_its_fix(tmp_path):
    with pytest.raises(DataError) as err:
        data.read_tsv(tmp_path / "nope.tsv")          # bench/ reads a TSV directly: the reader checks too
    assert (err.value.message, err.value.fix) == (f"{tmp_path / 'nope.tsv'}: file not found", "check the --data path")
    tsv = tmp_path / "two.tsv"
    tsv.write_text("src\t1\t\tgood sentence\nsrc\t1\tbad\n")
    with pytest.raises(DataError) as err:
        data.read_tsv(tsv)
    assert err.value.message == f"{tsv}:2: 3 tab-separated columns, expected 4 (source, label, annotation, sentence)"
    assert err.value.fix == "use the CoLA release layout; a sentence must not contain a tab"
    csv_file = tmp_path / "extra.csv"
    csv_file.write_text("sentence,label\na, b, c,1\n")
    with pytest.raises(DataError) as err:
        data.read_csv(csv_file)
    assert err.value.fix == "quote sentences that contain commas"


def test_a_hub_failure_names_the_error_and_the_offline_way(monkeypatch):
    def offline(api, repo_id):
        raise ConnectionError("no route to host")
    monkeypatch.setattr(facade, "load_hub_dataset", offline)
    with pytest.raises(DataError) as err:
        data.load_cola("glue-cola", "transformers", None)
    assert err.value.message == ("could not load 'nyu-mll/glue' (cola) from the transformers hub: "
                                 "ConnectionError: no route to host")
    assert err.value.fix == "check the network, or fetch once with `make fetch` and pass --data DIR"


def test_the_smoke_source_is_generated_into_the_work_directory(tmp_path):
    dataset, info = data.load_cola("smoke", "transformers", tmp_path, {"train": 40, "validation": 10, "seed": 3})
    assert (info.source, info.kind, info.rows) == ("smoke", "generated", {"train": 40, "validation": 10})
    assert (tmp_path / "smoke-data" / "raw" / "in_domain_train.tsv").is_file()
    assert set(info.files) == {"raw/in_domain_train.tsv", "raw/in_domain_dev.tsv", "raw/out_of_domain_dev.tsv"}
    assert info.files["raw/in_domain_train.tsv"] == hashlib.sha256(
        (tmp_path / "smoke-data" / "raw" / "in_domain_train.tsv").read_bytes()).hexdigest()
    assert info.sha256 == data.content_sha256({"train": [{"label": r["label"], "sentence": r["sentence"]}
                                                         for r in dataset["train"]],
                                               "validation": [{"label": r["label"], "sentence": r["sentence"]}
                                                              for r in dataset["validation"]]})
    record = info.as_record()
    assert record["source"] == "smoke" and record["kind"] == "generated" and record["rows"]["train"] == 40
    _, again = data.load_cola("smoke", "transformers", tmp_path / "b", {"train": 40, "validation": 10, "seed": 4})
    assert again.sha256 != info.sha256                  # the settings reach the generator


def test_explicit_files_keep_an_equals_sign_in_their_path_and_are_named_by_path(tmp_path):
    odd = tmp_path / "v=1"
    odd.mkdir()
    for split in ("train", "validation"):
        (odd / f"{split}.jsonl").write_text('{"sentence": "a b", "label": 1}\n{"sentence": "c d", "label": 0}\n')
    source = f"train={odd / 'train.jsonl'},validation={odd / 'validation.jsonl'}"
    kind, files, root = data.resolve_files(source)
    assert kind == "files" and files["train"] == [odd / "train.jsonl"] and root == data.Path(".")
    _, info = data.load_cola(source, "transformers", tmp_path)
    assert info.source == source and set(info.files) == {str(odd / "train.jsonl"), str(odd / "validation.jsonl")}


def test_an_absolute_path_with_one_slash_is_local_not_a_hub_id(tmp_path):
    assert data.is_local("/data") and data.is_local("./cola") and data.is_local("~/cola")
    assert not data.is_local("nyu-mll/glue") and not data.is_local("smoke")
