"""The tutorial's script with nothing of the kit: the bench's baseline, and each kit profile's plain counterpart.

A plain transformers Trainer with the tutorial's settings: pad to 512, batch 4, adamw_torch,
lr 2e-5, 3 epochs, logging every step, fp32, accuracy each epoch. Two differences, both needed
to run it here and both applied to the kit's runs too: the data are read from the bench's local
TSV files instead of the hub, and `overrides` (the bench's max_steps, no eval, no checkpoints)
go into TrainingArguments. `half_precision_backend="auto"` is left out: it changes nothing and
transformers 5 removed it.

Given `settings` and `tokenize` (a kit profile's TrainingArguments and tokenize section, as the kit
resolves them: bench.run.plain_settings), the same script is that profile's plain counterpart: the
kit's TrainingArguments, padding mode, truncation, max length, columns and collator
(DataCollatorWithPadding, which pads each batch to its longest row when the profile pads dynamically),
and nothing of what the kit adds (run record, token counter, parity/energy/stop callbacks, memory
sampler, SwanLab).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from datasets import Dataset, DatasetDict
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    DataCollatorWithPadding,
    Trainer,
    TrainingArguments,
    set_seed,
)

from recipe.smoke_data import FILES

MAX_LENGTH = 512


def read_split(paths: list[Path]) -> Dataset:
    rows = [line.split("\t") for path in paths for line in path.read_text().splitlines() if line]
    return Dataset.from_dict({"sentence": [r[3] for r in rows], "label": [int(r[1]) for r in rows],
                              "idx": list(range(len(rows)))})


def tutorial_settings(use_cpu: bool) -> dict:
    """The tutorial's TrainingArguments (output_dir apart)."""
    return {"logging_steps": 1, "eval_strategy": "epoch", "per_device_train_batch_size": 4, "optim": "adamw_torch",
            "learning_rate": 2e-5, "num_train_epochs": 3, "report_to": "none", "use_cpu": use_cpu}


def train(model_dir: Path, data_dir: Path, output_dir: Path, use_cpu: bool, overrides: dict,
          callbacks: list, settings: dict | None = None, tokenize: dict | None = None) -> None:
    """The tutorial's run; with `settings` (TrainingArguments without output_dir; use_cpu is then
    theirs) and `tokenize` (the kit's tokenize section), a kit profile's plain counterpart."""
    settings = tutorial_settings(use_cpu) if settings is None else settings
    set_seed(int(settings.get("seed", 42)))
    dataset = DatasetDict(train=read_split([data_dir / FILES["train"]]),
                          validation=read_split([data_dir / FILES["in_domain_dev"],
                                                 data_dir / FILES["out_of_domain_dev"]]))
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    if tokenize is None:   # the tutorial's own
        options, remove, collator = {"truncation": True, "padding": "max_length", "max_length": MAX_LENGTH}, [], None
    else:                  # as recipe/finetune.py tokenises and collates
        options = {"truncation": tokenize.get("truncation", True), "max_length": tokenize["max_length"],
                   "padding": "max_length" if tokenize.get("padding", "max_length") == "max_length" else False}
        remove, collator = ["sentence", "idx"], DataCollatorWithPadding(tokenizer)

    def tokenize_function(examples):
        return tokenizer(examples["sentence"], **options)

    tokenized_datasets = dataset.map(tokenize_function, batched=True, remove_columns=remove)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=2)
    training_args = TrainingArguments(**{"output_dir": str(output_dir), **settings, **overrides})

    def compute_metrics(eval_pred):
        logits, labels = eval_pred
        return {"accuracy": float((np.argmax(logits, axis=-1) == labels).mean())}

    trainer = Trainer(model=model, args=training_args, train_dataset=tokenized_datasets["train"],
                      eval_dataset=tokenized_datasets["validation"], compute_metrics=compute_metrics,
                      data_collator=collator, callbacks=callbacks)
    trainer.train()
