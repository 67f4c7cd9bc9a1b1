"""Accuracy (the tutorial's metric) and Matthews correlation (CoLA's official metric)."""

from __future__ import annotations

import math

import numpy as np

from recipe import facade


def matthews_corrcoef(predictions, labels) -> float:
    """MCC for binary labels; 0.0 when undefined (a constant prediction or a single class),
    as scikit-learn and GLUE's scorer report it."""
    predictions, labels = np.asarray(predictions), np.asarray(labels)
    tp = int(((predictions == 1) & (labels == 1)).sum())
    tn = int(((predictions == 0) & (labels == 0)).sum())
    fp = int(((predictions == 1) & (labels == 0)).sum())
    fn = int(((predictions == 0) & (labels == 1)).sum())
    denominator = math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    return 0.0 if denominator == 0 else (tp * tn - fp * fn) / denominator


def make_compute_metrics(api: str):
    def compute_metrics(eval_pred) -> dict:
        logits, labels = eval_pred
        if isinstance(logits, tuple):
            logits = logits[0]
        predictions = np.argmax(logits, axis=-1)
        return {"accuracy": facade.accuracy(api, predictions, labels),
                "mcc": matthews_corrcoef(predictions, labels)}
    return compute_metrics
