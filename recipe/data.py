"""Data sources for CoLA-format data, validated with file:line messages.

`--data` accepts:
  smoke                      the generated sample (recipe.smoke_data), written into the run dir
  glue-cola                  GLUE CoLA from the API's hub (AI_Connect/glue or nyu-mll/glue)
  <owner>/<name>             any hub dataset id with a `cola` config
  DIR with raw/in_domain_train.tsv   the public CoLA TSV release (dev = in-domain + out-of-domain)
  DIR with *.parquet         the GLUE CoLA parquet files (train-*.parquet, validation-*.parquet)
  DIR with train.jsonl|csv   sentence/label files (validation.jsonl|csv beside it)
  train=PATH,validation=PATH two explicit .jsonl/.csv/.tsv files
"""

from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import datasets

from recipe import facade, hub
from recipe.errors import DataError
from recipe.smoke_data import write_smoke_dataset

SPLITS = ("train", "validation")
TSV_COLUMNS = 4  # source code, label, original annotation, sentence


@dataclass
class DataInfo:
    source: str
    kind: str
    files: dict = field(default_factory=dict)
    rows: dict = field(default_factory=dict)
    majority_baseline: float | None = None
    sha256: str | None = None

    def as_record(self) -> dict:
        return asdict(self)


Rows = list[dict]  # [{"sentence": str, "label": int, "idx": int}]


# --------------------------------------------------------------------------- readers
def _check_row(path: Path, line: int, sentence, label) -> dict:
    if str(label).strip() not in ("0", "1"):
        raise DataError(f"{path}:{line}: label {label!r} is not 0 or 1",
                        fix="CoLA labels are 1 (acceptable) or 0 (unacceptable)")
    if sentence is None or not str(sentence).strip():
        raise DataError(f"{path}:{line}: empty sentence", fix="remove the line or fill in the sentence")
    return {"sentence": str(sentence), "label": int(str(label).strip())}


def read_tsv(path: Path) -> Rows:
    """CoLA release TSV: four tab-separated columns, no header, no quoting."""
    rows = []
    for line_no, line in enumerate(_read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        columns = line.split("\t")
        if len(columns) != TSV_COLUMNS:
            raise DataError(f"{path}:{line_no}: {len(columns)} tab-separated columns, expected {TSV_COLUMNS} "
                            "(source, label, annotation, sentence)",
                            fix="use the CoLA release layout; a sentence must not contain a tab")
        rows.append(_check_row(path, line_no, columns[3], columns[1]))
    return rows


def read_jsonl(path: Path) -> Rows:
    rows = []
    for line_no, line in enumerate(_read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataError(f"{path}:{line_no}: not valid JSON ({err.msg})") from None
        if not isinstance(record, dict) or "sentence" not in record or "label" not in record:
            raise DataError(f"{path}:{line_no}: needs the keys \"sentence\" and \"label\"")
        rows.append(_check_row(path, line_no, record["sentence"], record["label"]))
    return rows


def read_csv(path: Path) -> Rows:
    lines = _read_text(path).splitlines()
    reader = csv.DictReader(lines)
    missing = {"sentence", "label"} - set(reader.fieldnames or [])
    if missing:
        raise DataError(f"{path}:1: header lacks column(s) {sorted(missing)}",
                        fix="the first line must name the columns, e.g. `sentence,label`")
    rows = []
    for record in reader:
        line_no = reader.line_num
        if None in record:  # more fields than the header names
            raise DataError(f"{path}:{line_no}: more columns than the header has",
                            fix="quote sentences that contain commas")
        rows.append(_check_row(path, line_no, record["sentence"], record["label"]))
    return rows


def read_parquet(path: Path) -> Rows:
    import pyarrow.parquet as pq
    try:
        table = pq.read_table(path)
    except Exception as err:  # noqa: BLE001 - pyarrow raises several types for a damaged file
        raise DataError(f"{path}: not a readable parquet file ({err})") from None
    missing = {"sentence", "label"} - set(table.column_names)
    if missing:
        raise DataError(f"{path}: lacks column(s) {sorted(missing)}; has {table.column_names}")
    sentences, labels = table.column("sentence").to_pylist(), table.column("label").to_pylist()
    # parquet has no lines: report the row number (1-based) instead
    return [_check_row(Path(f"{path} row"), i, s, lab) for i, (s, lab) in enumerate(zip(sentences, labels), 1)]


READERS = {".tsv": read_tsv, ".jsonl": read_jsonl, ".csv": read_csv, ".parquet": read_parquet}


def _read_text(path: Path) -> str:
    if not path.is_file():
        raise DataError(f"{path}: file not found", fix="check the --data path")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise DataError(f"{path}: not UTF-8 text (byte {err.start})") from None


def read_file(path: Path) -> Rows:
    reader = READERS.get(path.suffix)
    if reader is None:
        raise DataError(f"{path}: unsupported file type {path.suffix!r}", fix=f"use one of {sorted(READERS)}")
    if not path.is_file():
        raise DataError(f"{path}: file not found", fix="check the --data path")
    rows = reader(path)
    if not rows:
        raise DataError(f"{path}: no rows (empty split)", fix="every split needs at least one example")
    return rows


# --------------------------------------------------------------------------- source resolution
def resolve_files(source: str) -> tuple[str, dict[str, list[Path]], Path]:
    """Map a local --data value to (kind, {split: [files]}, root)."""
    if "=" in source:
        files = {}
        for part in source.split(","):
            split, _, path = part.partition("=")
            if split not in SPLITS:
                raise DataError(f"--data {source!r}: unknown split {split!r}", fix="write train=PATH,validation=PATH")
            files[split] = [Path(path)]
        if set(files) != set(SPLITS):
            raise DataError(f"--data {source!r}: both train= and validation= are needed")
        return "files", files, Path(".")
    root = Path(source).expanduser()
    if not root.exists():
        raise DataError(f"--data {source}: no such file or directory",
                        fix="pass an existing directory, `smoke`, `glue-cola` or a hub id like nyu-mll/glue")
    if root.is_file():
        raise DataError(f"--data {source}: a single file has only one split",
                        fix=f"write --data train={source},validation=OTHER_FILE")
    raw = root / "raw" if (root / "raw").is_dir() else root
    if (raw / "in_domain_train.tsv").exists():
        return "tsv", {"train": [raw / "in_domain_train.tsv"],
                       "validation": [raw / "in_domain_dev.tsv", raw / "out_of_domain_dev.tsv"]}, root
    parquet = sorted(root.rglob("*.parquet"))
    if parquet:
        files = {split: [p for p in parquet if p.name.startswith(split)] for split in SPLITS}
        for split in SPLITS:
            if not files[split]:
                raise DataError(f"--data {source}: no {split}-*.parquet file among {[p.name for p in parquet]}")
        return "parquet", files, root
    for suffix in (".jsonl", ".csv"):
        if (root / f"train{suffix}").exists():
            return suffix[1:], {split: [root / f"{split}{suffix}"] for split in SPLITS}, root
    raise DataError(f"--data {source}: no CoLA data recognised in this directory",
                    fix="expected raw/in_domain_train.tsv, train-*.parquet, or train.jsonl / train.csv")


def is_local(source: str) -> bool:
    looks_like_hub_id = source.count("/") == 1 and not source.startswith((".", "/", "~")) \
        and not Path(source).exists()
    return source not in ("smoke", "glue-cola") and not looks_like_hub_id


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def content_sha256(splits: dict[str, Rows]) -> str:
    """Hash of the examples themselves, so the same data from a hub, parquet or TSV compares equal."""
    digest = hashlib.sha256()
    for split in SPLITS:
        for row in splits[split]:
            digest.update(f"{split}\t{row['label']}\t{row['sentence']}\n".encode())
    return digest.hexdigest()


def load_cola(source: str, api: str, workdir: Path, smoke_settings: dict | None = None):
    """Load train/validation as a DatasetDict (sentence, label, idx) plus its DataInfo."""
    if source == "smoke":
        root = write_smoke_dataset(workdir / "smoke-data", **(smoke_settings or {}))
        splits, info = _load_local(str(root), kind="generated")
        info.source = "smoke"
    elif is_local(source):
        splits, info = _load_local(source)
    else:
        splits, info = _load_hub(source, api)
    labels = [row["label"] for row in splits["validation"]]
    info.majority_baseline = round(max(labels.count(0), labels.count(1)) / len(labels), 4)
    info.rows = {split: len(splits[split]) for split in SPLITS}
    info.sha256 = content_sha256(splits)
    dataset = datasets.DatasetDict({
        split: datasets.Dataset.from_dict({
            "sentence": [r["sentence"] for r in rows], "label": [r["label"] for r in rows],
            "idx": list(range(len(rows)))})
        for split, rows in splits.items()})
    return dataset, info


def _load_local(source: str, kind: str | None = None):
    detected, files, root = resolve_files(source)
    splits = {}
    for split, paths in files.items():
        rows = [row for path in paths for row in read_file(path)]
        splits[split] = rows
    hashes = {}
    for path in (p for paths in files.values() for p in paths):
        try:
            name = str(path.relative_to(root))
        except ValueError:
            name = str(path)
        hashes[name] = sha256_file(path)
    return splits, DataInfo(source=source, kind=kind or detected, files=hashes)


def _load_hub(source: str, api: str):
    repo_id = hub.hub_id(source, api)
    try:
        loaded = facade.load_hub_dataset(api, repo_id)
    except Exception as err:  # noqa: BLE001 - network, auth, missing config: all end the same way
        raise DataError(f"could not load {repo_id!r} ({hub.GLUE_TASK}) from the {api} hub: "
                        f"{type(err).__name__}: {err}",
                        fix="check the network, or fetch once with `make fetch` and pass --data DIR") from None
    splits = {}
    for split in SPLITS:
        if split not in loaded:
            raise DataError(f"hub dataset {repo_id!r} has no {split!r} split (has {list(loaded)})")
        part = loaded[split]
        splits[split] = [_check_row(Path(f"{repo_id}:{split} row"), i, s, lab)
                         for i, (s, lab) in enumerate(zip(part["sentence"], part["label"]), 1)]
        if not splits[split]:
            raise DataError(f"hub dataset {repo_id!r}: empty {split} split")
    return splits, DataInfo(source=source if source == repo_id else f"{source} ({repo_id})", kind="hub")

