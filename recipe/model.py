"""Tokenizer and model sources: a hub id, a local directory, or a tiny BERT built from a config.

The tiny BERT (smoke profile) is written to a directory first and then loaded through the same
`from_pretrained` calls as bert-base-cased, so the smoke run exercises the real loading path.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from pathlib import Path

from recipe import hub
from recipe.data import sha256_file
from recipe.errors import ModelError

TINY = "tiny-bert"
SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
DEFAULT_TINY = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 128}


def build_vocab(sentences, max_size: int = 5000) -> list[str]:
    """Word-level vocab from the training sentences (BERT's basic tokenizer splits on spaces and
    punctuation, so every word of the data becomes one token)."""
    counts = Counter(tok for s in sentences for tok in re.findall(r"\w+|[^\w\s]", s))
    return SPECIAL_TOKENS + [tok for tok, _ in counts.most_common(max_size - len(SPECIAL_TOKENS))]


def write_tiny_bert(directory: Path, sentences, settings: dict | None, max_length: int, num_labels: int) -> Path:
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    directory.mkdir(parents=True, exist_ok=True)
    vocab = build_vocab(sentences)
    (directory / "vocab.txt").write_text("\n".join(vocab) + "\n")
    # `vocab=` (not vocab_file=): transformers 5.x ignores vocab_file and yields a 5-token vocab.
    try:
        tokenizer = BertTokenizerFast(vocab={tok: i for i, tok in enumerate(vocab)}, do_lower_case=False)
    except TypeError:  # transformers 4.x only knows vocab_file
        tokenizer = BertTokenizerFast(vocab_file=str(directory / "vocab.txt"), do_lower_case=False)
    tokenizer.model_max_length = max_length
    tokenizer.save_pretrained(directory)
    config = BertConfig(vocab_size=len(vocab), max_position_embeddings=max(max_length, 64), num_labels=num_labels,
                        **{**DEFAULT_TINY, **(settings or {})})
    BertForSequenceClassification(config).save_pretrained(directory)
    return directory


def resolve_model_source(model: str, api: str) -> str:
    """A logical name (bert-base-cased), hub id or local dir -> what from_pretrained gets."""
    looks_local = model.startswith((".", "/", "~")) or Path(model).expanduser().exists()
    if looks_local:
        path = Path(model).expanduser()
        if not path.exists():
            raise ModelError(f"--model {model}: the directory {path} does not exist", fix=_fetch_hint())
        if not path.is_dir():
            raise ModelError(f"--model {model}: {path} is a file, not a model directory", fix=_fetch_hint())
        if not (path / "config.json").is_file():
            raise ModelError(f"--model {model}: no config.json in that directory",
                             fix=_fetch_hint())
        return str(path)
    return hub.hub_id(model, api)


def _fetch_hint() -> str:
    return ("download it once with `make fetch` (or `huggingface-cli download google-bert/bert-base-cased "
            "--local-dir models/bert-base-cased`) and pass --model models/bert-base-cased")


def _revision(source: str) -> dict:
    """from_pretrained's revision= for a hub id the kit pins (recipe.hub.HUB_REVISIONS)."""
    revision = hub.hub_revision(source)
    return {"revision": revision} if revision else {}


def load_tokenizer(api_classes, source: str):
    try:
        return api_classes.AutoTokenizer.from_pretrained(source, **_revision(source))
    except OSError as err:
        raise ModelError(f"cannot load the tokenizer of {source!r}: {_first_line(err)}", fix=_fetch_hint()) from None


# BERT's dropout settings; `dropout: 0.0` (parity profile) sets all three at load time
DROPOUT_SETTINGS = ("hidden_dropout_prob", "attention_probs_dropout_prob", "classifier_dropout")


def load_model(api_classes, source: str, num_labels: int, dropout: float | None = None):
    overrides = {} if dropout is None else dict.fromkeys(DROPOUT_SETTINGS, float(dropout))
    try:
        return api_classes.AutoModelForSequenceClassification.from_pretrained(source, num_labels=num_labels,
                                                                              **overrides, **_revision(source))
    except OSError as err:
        raise ModelError(f"cannot load the model {source!r}: {_first_line(err)}", fix=_fetch_hint()) from None


def _first_line(err: Exception) -> str:
    return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__


# The files that make a model's numbers: its config and weights (tokenizer files change no weight).
FINGERPRINT_PATTERNS = ("config.json", "*.safetensors", "*.bin", "*.safetensors.index.json", "*.bin.index.json")


def fingerprint(source: str) -> dict:
    """The manifest's `model_fingerprint`: sha256 of each config/weight file and of them all, and
    for a hub model the revision its cached snapshot resolved to (None where unknown)."""
    directory, revision = Path(source).expanduser(), hub.hub_revision(source)
    if not directory.is_dir():   # a hub id: its files are in the hub cache, under snapshots/<revision>/
        directory, revision = _hub_snapshot(source, revision)
    marker = directory / hub.FETCHED_MARKER if directory else None
    files = {}
    for pattern in FINGERPRINT_PATTERNS:
        for path in sorted(directory.glob(pattern)) if directory else []:
            if path.is_file() and path.name != "training_args.bin":
                files[path.name] = sha256_file(path)
    combined = hashlib.sha256("".join(f"{name}\t{digest}\n" for name, digest in sorted(files.items())).encode())
    return {"source": source, "hub_id": marker.read_text().strip() if marker and marker.is_file() else None,
            "revision": revision, "files": files, "sha256": combined.hexdigest() if files else None}


def _hub_snapshot(repo_id: str, revision: str | None) -> tuple[Path | None, str | None]:
    try:
        from huggingface_hub import try_to_load_from_cache
        found = try_to_load_from_cache(repo_id, "config.json", revision=revision)
    except Exception:  # noqa: BLE001 - no cache, an openMind id, an odd id: the fingerprint says unknown
        return None, revision
    if not isinstance(found, str):
        return None, revision
    snapshot = Path(found).parent
    return snapshot, snapshot.name   # the snapshot folder is named by the commit it resolved to

