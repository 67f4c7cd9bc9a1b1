"""Tokenizer and model sources: a hub id, a local directory, or a tiny BERT built from a config.

The tiny BERT (smoke profile) is written to a directory first and then loaded through the same
`from_pretrained` calls as bert-base-cased, so the smoke run exercises the real loading path.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from recipe import facade
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
        if not (path / "config.json").is_file():
            raise ModelError(f"--model {model}: no config.json in that directory",
                             fix=_fetch_hint())
        return str(path)
    return facade.hub_id(model, api)


def _fetch_hint() -> str:
    return ("download it once with `make fetch` (or `huggingface-cli download google-bert/bert-base-cased "
            "--local-dir models/bert-base-cased`) and pass --model models/bert-base-cased")


def load_tokenizer(api_classes, source: str):
    try:
        return api_classes.AutoTokenizer.from_pretrained(source)
    except OSError as err:
        raise ModelError(f"cannot load the tokenizer of {source!r}: {_first_line(err)}", fix=_fetch_hint()) from None


# BERT's dropout settings; `dropout: 0.0` (parity profile) sets all three at load time
DROPOUT_SETTINGS = ("hidden_dropout_prob", "attention_probs_dropout_prob", "classifier_dropout")


def load_model(api_classes, source: str, num_labels: int, dropout: float | None = None):
    overrides = {} if dropout is None else dict.fromkeys(DROPOUT_SETTINGS, float(dropout))
    try:
        return api_classes.AutoModelForSequenceClassification.from_pretrained(source, num_labels=num_labels,
                                                                               **overrides)
    except OSError as err:
        raise ModelError(f"cannot load the model {source!r}: {_first_line(err)}", fix=_fetch_hint()) from None


def _first_line(err: Exception) -> str:
    return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
