"""What every configuration trains on: CoLA-format data with CoLA-like lengths and a BERT of a given
shape, written once per bench and loaded by all configurations from the same directories.

Speed depends on the shapes, not on the words or weights, so the sentences are random words and
the weights random (bert-base-cased's shape needs no download).
"""

from __future__ import annotations

import random
from pathlib import Path

import torch

from recipe import config as kit_config
from recipe import model as kit_model
from recipe.data import read_tsv
from recipe.smoke_data import FILES, write_cola_tsv

MAX_LENGTH = 512   # the tutorial's padding length; also BERT's position limit
SHAPES = {
    # the smoke profile's tiny BERT (recipe/configs/smoke.yaml tiny_model)
    "tiny": dict(kit_config.load_profile("smoke")["tiny_model"]),
    # bert-base-cased's config.json
    "bert-base": {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
                  "intermediate_size": 3072, "vocab_size": 28996},
}
# CoLA through bert-base-cased's tokenizer: ~11 tokens per sentence with [CLS]/[SEP], at most 47.
WORDS_MIN, WORDS_MAX, WORDS_GAMMA = 2, 44, (3.0, 2.0)   # words = 2 + Gamma(3, 2): mean 8, long tail
VOCAB_WORDS = 2000
ACCEPTABLE_FRACTION = 0.7


def sentence(rng: random.Random) -> str:
    count = min(WORDS_MAX, WORDS_MIN + int(rng.gammavariate(*WORDS_GAMMA)))
    return " ".join(f"w{rng.randrange(VOCAB_WORDS)}" for _ in range(count)) + " ."


def write_data(root: Path, train_rows: int, validation_rows: int = 64, seed: int = 0) -> Path:
    """The CoLA release's TSV layout (what `--data DIR` reads); returns root."""
    rng = random.Random(seed)
    half = validation_rows // 2
    for split, rows in (("train", train_rows), ("in_domain_dev", half), ("out_of_domain_dev", validation_rows - half)):
        labels = [int(rng.random() < ACCEPTABLE_FRACTION) for _ in range(rows)]
        write_cola_tsv(root / FILES[split], [("bench", label, sentence(rng)) for label in labels])
    return root


def train_sentences(root: Path) -> list[str]:
    return [row["sentence"] for row in read_tsv(root / FILES["train"])]


def write_model(directory: Path, shape: str, sentences: list[str], seed: int = 0,
                dropout: float | None = None) -> Path:
    """A word-level tokenizer for the data and a randomly initialised BERT of `shape`; `dropout`
    (e.g. 0.0 for the parity check) replaces BERT's 0.1 hidden and attention dropout."""
    from transformers import BertConfig, BertForSequenceClassification

    settings = {k: v for k, v in SHAPES[shape].items() if k != "vocab_size"}
    if dropout is not None:
        settings.update(hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout)
    torch.manual_seed(seed)
    kit_model.write_tiny_bert(directory, sentences, settings, MAX_LENGTH, num_labels=2)
    vocab_size = SHAPES[shape].get("vocab_size")
    if vocab_size:   # the real embedding table: 22 M of bert-base's 108 M weights, updated every step
        config = BertConfig.from_pretrained(directory)
        config.vocab_size = vocab_size
        BertForSequenceClassification(config).save_pretrained(directory)
    return directory


def token_lengths(model_dir: Path, sentences: list[str]) -> list[int]:
    """Real tokens per training row, [CLS] and [SEP] included, as the recipe tokenises them."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    return [len(ids) for ids in tokenizer(sentences, truncation=True, max_length=MAX_LENGTH)["input_ids"]]


def model_size(model_dir: Path) -> dict:
    """Weights outside the embeddings (what the 6-FLOPs-per-weight rule counts), layers, hidden size."""
    from transformers import BertConfig, BertForSequenceClassification

    config = BertConfig.from_pretrained(model_dir)
    with torch.device("meta"):   # shapes only, no memory
        net = BertForSequenceClassification(config)
    nonembedding = sum(p.numel() for name, p in net.named_parameters() if ".embeddings." not in name)
    total = sum(p.numel() for p in net.parameters())
    return {"parameters": total, "nonembedding_parameters": nonembedding,
            "layers": config.num_hidden_layers, "hidden_size": config.hidden_size}
