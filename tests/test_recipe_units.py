"""Unit behaviour of the recipe: profiles, metrics, argument compatibility, tracking, record writing."""

from __future__ import annotations

import json
import math
import sys

import pytest

from recipe import compat, config, finetune, hub, metrics, record, tracking
from recipe.errors import ConfigError


# ---------------------------------------------------------------- the published profile is the tutorial
def test_published_profile_is_exactly_the_tutorial():
    published = config.load_profile("published")
    train, tokenize = published["train"], published["tokenize"]
    assert published["model"] == "bert-base-cased" and published["data"] == "glue-cola"
    assert published["num_labels"] == 2
    assert tokenize == {"max_length": 512, "padding": "max_length", "truncation": True}
    assert train["per_device_train_batch_size"] == 4
    assert train["learning_rate"] == 2e-5
    assert train["optim"] == "adamw_torch"
    assert train["num_train_epochs"] == 3
    assert train["eval_strategy"] == "epoch"
    assert train["logging_steps"] == 1
    assert train["seed"] == 42
    assert train["half_precision_backend"] == "auto"
    assert train["fp16"] is False and train["bf16"] is False   # fp32
    assert hub.hub_id(published["model"], "openmind") == "PyTorch-NPU/bert_base_cased"
    assert hub.hub_id(published["model"], "transformers") == "google-bert/bert-base-cased"
    assert hub.hub_id(published["data"], "openmind") == "AI_Connect/glue"
    assert hub.hub_id(published["data"], "transformers") == "nyu-mll/glue"


def test_overrides_parse_numbers_and_reject_typos():
    smoke = config.load_profile("smoke")
    changed = config.apply_overrides(smoke, ["train.learning_rate=3e-3", "tokenize.padding=dynamic"])
    assert changed["train"]["learning_rate"] == pytest.approx(0.003)  # YAML alone reads 3e-3 as a string
    assert changed["tokenize"]["padding"] == "dynamic"
    assert smoke["train"]["learning_rate"] != 0.003                   # the loaded profile is untouched
    with pytest.raises(ConfigError, match=r"unknown setting\(s\) \['lerning_rate'\]"):
        config.apply_overrides(smoke, ["lerning_rate=1"])
    with pytest.raises(ConfigError, match="tokenize.padding='longest'"):
        config.apply_overrides(smoke, ["tokenize.padding=longest"])
    with pytest.raises(ConfigError, match="not KEY=VALUE"):
        config.apply_overrides(smoke, ["train.seed"])
    with pytest.raises(ConfigError, match=r"unknown tokenize setting\(s\) \['pretokenize'\]"):   # nothing reads it
        config.apply_overrides(smoke, ["tokenize.pretokenize=true"])


def test_broken_profile_yaml_names_the_line(tmp_path):
    bad = tmp_path / "mine.yaml"
    bad.write_text("profile: mine\ntrain:\n  seed: 1\n   lr: [\n")
    with pytest.raises(ConfigError, match=r"mine.yaml:4: not valid YAML"):
        config.load_profile(str(bad))
    with pytest.raises(ConfigError, match="unknown profile 'nope'"):
        config.load_profile("nope")


def test_config_hash_ignores_key_order():
    assert config.config_sha256({"a": 1, "b": {"c": 2}}) == config.config_sha256({"b": {"c": 2}, "a": 1})
    assert config.config_sha256({"a": 1}) != config.config_sha256({"a": 2})


# ---------------------------------------------------------------- MCC on hand-checked cases
@pytest.mark.parametrize("predictions, labels, expected", [
    ([1, 1, 0, 0], [1, 1, 0, 0], 1.0),                  # perfect
    ([0, 0, 1, 1], [1, 1, 0, 0], -1.0),                 # perfectly wrong
    ([1, 1, 1, 1], [1, 0, 1, 0], 0.0),                  # constant prediction: undefined -> 0 (majority baseline)
    # tp=2 tn=1 fp=1 fn=1: (2*1 - 1*1) / sqrt(3*3*2*2) = 1/6
    ([1, 1, 1, 0, 0], [1, 1, 0, 1, 0], 1 / 6),
    # tp=3 tn=4 fp=1 fn=2: (12 - 2) / sqrt(4*5*5*6) = 10 / sqrt(600)
    ([1, 1, 1, 1, 0, 0, 0, 0, 0, 0], [1, 1, 1, 0, 1, 1, 0, 0, 0, 0], 10 / math.sqrt(600)),
])
def test_matthews_correlation_by_hand(predictions, labels, expected):
    assert metrics.matthews_corrcoef(predictions, labels) == pytest.approx(expected)


def test_compute_metrics_argmaxes_logits():
    import numpy as np
    logits = np.array([[2.0, -1.0], [0.1, 0.3], [0.0, 1.0], [3.0, 0.0]])
    result = metrics.make_compute_metrics("transformers")((logits, np.array([0, 1, 0, 0])))
    assert result["accuracy"] == pytest.approx(0.75)
    assert result["mcc"] == pytest.approx(metrics.matthews_corrcoef([0, 1, 1, 0], [0, 1, 0, 0]))


def test_compute_metrics_takes_the_logits_out_of_a_model_output_tuple():
    import numpy as np
    logits = np.array([[2.0, -1.0], [0.1, 0.3], [0.0, 1.0], [3.0, 0.0]])
    hidden = np.zeros((4, 2))   # e.g. hidden states the model also returned; never the predictions
    result = metrics.make_compute_metrics("transformers")(((logits, hidden), np.array([0, 1, 0, 0])))
    assert result["accuracy"] == pytest.approx(0.75)


def test_compute_metrics_uses_openminds_accuracy_on_the_openmind_api(monkeypatch):
    import types

    import numpy as np
    calls = []

    class Accuracy:   # openmind.metrics.Accuracy's interface: compute(preds=, labels=) -> {"accuracy": ...}
        def compute(self, preds, labels):
            calls.append((list(preds), list(labels)))
            return {"accuracy": 0.5}
    monkeypatch.setitem(sys.modules, "openmind", types.SimpleNamespace(metrics=types.SimpleNamespace(Accuracy=Accuracy)))
    logits = np.array([[2.0, -1.0], [0.1, 0.3], [0.0, 1.0], [3.0, 0.0]])
    result = metrics.make_compute_metrics("openmind")((logits, np.array([0, 1, 0, 0])))
    assert result["accuracy"] == 0.5 and calls == [([0, 1, 1, 0], [0, 1, 0, 0])]


# ---------------------------------------------------------------- transformers 4.45 and 5.x argument names
class OldTrainingArguments:
    """The transformers 4.40-era signature: only evaluation_strategy and group_by_length."""

    def __init__(self, output_dir, evaluation_strategy="no", group_by_length=False, learning_rate=5e-5):
        self.kwargs = {"output_dir": output_dir, "evaluation_strategy": evaluation_strategy,
                       "group_by_length": group_by_length, "learning_rate": learning_rate}


class NewTrainingArguments:
    """The transformers 5.x signature: eval_strategy and train_sampling_strategy, no group_by_length."""

    def __init__(self, output_dir, eval_strategy="no", train_sampling_strategy="random", learning_rate=5e-5):
        self.kwargs = {"output_dir": output_dir, "eval_strategy": eval_strategy,
                       "train_sampling_strategy": train_sampling_strategy, "learning_rate": learning_rate}


def test_eval_strategy_maps_to_the_old_name():
    args = compat.training_arguments(OldTrainingArguments, {"output_dir": "x", "eval_strategy": "epoch",
                                                            "group_by_length": True})
    assert args.kwargs["evaluation_strategy"] == "epoch" and args.kwargs["group_by_length"] is True


def test_group_by_length_maps_to_the_new_sampling_strategy():
    args = compat.training_arguments(NewTrainingArguments, {"output_dir": "x", "eval_strategy": "epoch",
                                                            "group_by_length": True})
    assert args.kwargs == {"output_dir": "x", "eval_strategy": "epoch",
                           "train_sampling_strategy": "group_by_length", "learning_rate": 5e-5}


def test_real_installed_training_arguments_accept_the_profile(tmp_path):
    from transformers import TrainingArguments
    args = compat.training_arguments(TrainingArguments, {"output_dir": str(tmp_path), "report_to": "none",
                                                         **config.load_profile("published")["train"]})
    assert args.per_device_train_batch_size == 4
    assert getattr(args.eval_strategy, "value", args.eval_strategy) == "epoch"


def test_unknown_training_argument_is_a_config_error():
    with pytest.raises(ConfigError, match="train.lr_schedule is not a TrainingArguments setting"):
        compat.training_arguments(NewTrainingArguments, {"output_dir": "x", "lr_schedule": "cosine"})


# ---------------------------------------------------------------- tracking never asks for a login
@pytest.mark.parametrize("environ, expected_mode, warns", [
    ({}, "offline", False),                                 # (no swanboard: see the next test)
    ({"SWANLAB_API_KEY": "k" * 20}, "cloud", False),
    ({"SWANLAB_MODE": "cloud"}, "offline", True),           # cloud without a key would prompt: fall back
    ({"SWANLAB_MODE": "local"}, "local", False),
    ({"SWANLAB_MODE": "disabled", "SWANLAB_API_KEY": "k" * 20}, "disabled", False),
    ({"SWANLAB_MODE": "online-ish"}, "offline", True),
])
def test_swanlab_mode(environ, expected_mode, warns):
    mode, warning = tracking.choose_mode(True, environ, dashboard=False)
    assert mode == expected_mode and bool(warning) == warns
    assert tracking.choose_mode(False, environ) == ("disabled", None)


def test_swanlab_logs_for_the_local_dashboard_when_swanboard_is_installed():
    assert tracking.choose_mode(True, {}, dashboard=True) == ("local", None)
    assert tracking.choose_mode(True, {"SWANLAB_MODE": "offline"}, dashboard=True) == ("offline", None)
    assert tracking.dashboard_installed()   # requirements/cpu.txt pins swanboard


def test_swanlab_callback_logs_into_the_run_directory(tmp_path):
    callback = tracking.make_callback("offline", tmp_path, "proj", "exp", {})
    assert str(tmp_path / "swanlog") in json.dumps(callback._init_kwargs)
    assert callback._init_kwargs["mode"] == "offline"


# ---------------------------------------------------------------- record: atomic, redacted
def test_atomic_write_leaves_the_old_file_when_interrupted(tmp_path, monkeypatch):
    target = tmp_path / "summary.json"
    record.write_json_atomic(target, {"status": "complete", "n": 1})

    def exploding_dump(*args, **kwargs):
        raise KeyboardInterrupt  # a kill in the middle of writing
    monkeypatch.setattr(record.json, "dump", exploding_dump)
    with pytest.raises(KeyboardInterrupt):
        record.write_json_atomic(target, {"status": "complete", "n": 2})
    assert json.loads(target.read_text()) == {"status": "complete", "n": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]  # no temp file left behind


def test_secrets_are_redacted(monkeypatch):
    monkeypatch.setenv("SWANLAB_API_KEY", "sk-verysecret123")
    cleaned = record.redact({
        "command": ["python", "--swanlab-api-key", "sk-verysecret123", "--set", "tracking.api_key=abc"],
        "config": {"train": {"hub_token": "hf_abc", "learning_rate": 1e-3}},
        "note": "key is sk-verysecret123",
        "real_tokens_per_second": 10.0,
    })
    text = json.dumps(cleaned)
    assert "sk-verysecret123" not in text and "hf_abc" not in text and "=abc" not in text
    assert cleaned["config"]["train"]["learning_rate"] == 1e-3
    assert cleaned["real_tokens_per_second"] == 10.0   # "tokens" in a metric name is not a secret


def test_killed_or_partial_summary_does_not_count_as_complete(tmp_path):
    assert record.load_summary(tmp_path) is None
    (tmp_path / "summary.json").write_text('{"status": "compl')
    assert record.load_summary(tmp_path) is None
    (tmp_path / "summary.json").write_text('{"status": "complete"}')
    assert record.load_summary(tmp_path) == {"status": "complete"}


def test_metrics_stream_stops_at_a_cut_line(tmp_path):
    (tmp_path / "metrics.jsonl").write_text('{"kind": "train", "step": 1}\n{"kind": "tr')
    assert record.read_metrics(tmp_path) == [{"kind": "train", "step": 1}]


def test_nonfinite_loss_is_valid_json(tmp_path):
    run = record.RunRecord(tmp_path)
    run.start({"run_id": "x"}, resume_step=None)
    run.append_metrics({"kind": "train", "step": 1, "loss": float("nan")})
    assert record.read_metrics(tmp_path) == [{"kind": "train", "step": 1, "loss": None, "loss_nonfinite": "nan"}]


def test_samples_trained_counts_the_steps_that_ran_not_rows_times_epochs():
    # 10 rows in batches of 4: an epoch is 3 steps of 4, 4 and 2 samples
    assert finetune.samples_trained(2, 3, rows=10, global_batch=4) == 8
    assert finetune.samples_trained(3, 3, rows=10, global_batch=4) == 10     # the short last batch
    assert finetune.samples_trained(4, 3, rows=10, global_batch=4) == 14
    assert finetune.samples_trained(6, 3, rows=10, global_batch=4) == 20
    assert finetune.samples_trained(0, 3, rows=10, global_batch=4) == 0
    # the parity profile's max_steps on the smoke data: 12 steps of 4, far from rows x epochs
    assert finetune.samples_trained(12, 750, rows=3000, global_batch=4) == 48
