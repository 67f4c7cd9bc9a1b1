"""The tutorial's script with nothing of the kit: the bench's baseline for the kit-overhead figure.

A plain transformers Trainer with the tutorial's settings: pad to 512, batch 4, adamw_torch,
lr 2e-5, 3 epochs, logging every step, fp32, accuracy each epoch. Two differences, both needed
to run it here and both applied to the kit's runs too: the data are read from the bench's local
TSV files instead of the hub, and `overrides` (the bench's max_steps, no eval, no checkpoints)
go into TrainingArguments. `half_precision_backend="auto"` is left out: it changes nothing and
transformers 5 removed it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from datasets import Dataset, DatasetDict
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    Trainer,
    TrainingArguments,
    set_seed,
)

from recipe.smoke_data import FILES


def read_split(paths: list[Path]) -> Dataset:
    rows = [line.split("\t") for path in paths for line in path.read_text().splitlines() if line]
    return Dataset.from_dict({"sentence": [r[3] for r in rows], "label": [int(r[1]) for r in rows],
                              "idx": list(range(len(rows)))})


def train(model_dir: Path, data_dir: Path, output_dir: Path, use_cpu: bool, overrides: dict,
          callbacks: list) -> None:
    set_seed(42)
    dataset = DatasetDict(train=read_split([data_dir / FILES["train"]]),
                          validation=read_split([data_dir / FILES["in_domain_dev"],
                                                 data_dir / FILES["out_of_domain_dev"]]))
    tokenizer = AutoTokenizer.from_pretrained(model_dir)

    def tokenize_function(examples):
        return tokenizer(examples["sentence"], truncation=True, padding="max_length", max_length=512)

    tokenized_datasets = dataset.map(tokenize_function, batched=True)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=2)
    settings = {"output_dir": str(output_dir), "logging_steps": 1, "eval_strategy": "epoch",
                "per_device_train_batch_size": 4, "optim": "adamw_torch", "learning_rate": 2e-5,
                "num_train_epochs": 3, "report_to": "none", "use_cpu": use_cpu}
    training_args = TrainingArguments(**{**settings, **overrides})

    def compute_metrics(eval_pred):
        logits, labels = eval_pred
        return {"accuracy": float((np.argmax(logits, axis=-1) == labels).mean())}

    trainer = Trainer(model=model, args=training_args, train_dataset=tokenized_datasets["train"],
                      eval_dataset=tokenized_datasets["validation"], compute_metrics=compute_metrics,
                      callbacks=callbacks)
    trainer.train()
