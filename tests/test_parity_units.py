"""Parity recording without a training run: the weight hash, and the un-rounding of the loss that
transformers 4.x logs as round(loss, 4) (the images' 4.45), through the real callback API."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from recipe import parity


class TinyClassifier(torch.nn.Module):
    """Returns {"loss": ...} like a transformers model given labels."""

    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(3, 2)

    def forward(self, x, labels):
        return {"loss": torch.nn.functional.cross_entropy(self.linear(x), labels)}


def training_callback(model):
    callback = parity.ParityCallback(model, train_dataset=None, samples_per_step=4)
    args = SimpleNamespace(world_size=1, gradient_accumulation_steps=2)
    callback.on_train_begin(args, SimpleNamespace(global_step=0), None, train_dataloader=None, model=model)
    return callback, args


def test_the_rounded_logged_loss_is_replaced_by_the_exact_one():
    torch.manual_seed(0)
    model = TinyClassifier().train()
    callback, args = training_callback(model)
    losses = [float(model(torch.randn(4, 3), torch.tensor([0, 1, 0, 1]))["loss"].detach()) for _ in range(4)]
    model.eval()
    model(torch.randn(4, 3), torch.tensor([0, 1, 0, 1]))              # evaluation: not a training loss
    exact = sum(losses) / 2 / 2                                         # 4 micro-batches, accumulation 2, 2 steps
    logs = {"loss": round(exact, 4), "learning_rate": 1e-3}             # what transformers 4.45 logs
    callback.on_log(args, SimpleNamespace(global_step=2), None, logs=logs)
    assert logs["loss"] == pytest.approx(exact, rel=1e-6) and logs["loss"] != round(exact, 4)


def test_a_logged_loss_that_is_not_the_rounded_one_is_left_alone():
    model = TinyClassifier().train()
    callback, args = training_callback(model)
    model(torch.randn(4, 3), torch.tensor([0, 1, 0, 1]))
    unrounded = {"loss": 0.693147180}                                    # transformers 5.x: already exact
    callback.on_log(args, SimpleNamespace(global_step=1), None, logs=unrounded)
    assert unrounded["loss"] == 0.693147180
    model(torch.randn(4, 3), torch.tensor([0, 1, 0, 1]))
    other = {"loss": 12.5}                                               # not this quantity (e.g. nan filter)
    callback.on_log(args, SimpleNamespace(global_step=2), None, logs=other)
    assert other["loss"] == 12.5


def test_weights_hash_sees_the_smallest_change():
    model, same = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    same.load_state_dict(model.state_dict())
    assert parity.weights_sha256(model) == parity.weights_sha256(same)
    with torch.no_grad():
        same.bias[0] = torch.nextafter(same.bias[0], torch.tensor(1.0))  # one ulp
    assert parity.weights_sha256(model) != parity.weights_sha256(same)



def test_the_order_hash_ignores_padding_so_exact_and_published_can_align():
    """published pads to max_length, exact pads per batch: the same rows in the same order must
    give the same order hash, and another order must not."""
    from datasets import Dataset

    from recipe import parity

    rows = {"input_ids": [[101, 7, 102], [101, 8, 9, 102]], "label": [0, 1]}
    dynamic = Dataset.from_dict({**rows, "attention_mask": [[1] * len(r) for r in rows["input_ids"]]})
    padded = Dataset.from_dict({"input_ids": [r + [0] * (6 - len(r)) for r in rows["input_ids"]],
                                "attention_mask": [[1] * len(r) + [0] * (6 - len(r)) for r in rows["input_ids"]],
                                "label": rows["label"]})
    order = [1, 0]
    assert parity.order_sha256(order, parity.row_digests(dynamic)) == \
        parity.order_sha256(order, parity.row_digests(padded))
    assert parity.order_sha256([0, 1], parity.row_digests(padded)) != \
        parity.order_sha256(order, parity.row_digests(padded))
