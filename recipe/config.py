"""Profiles (YAML under recipe/configs/) resolved with command-line overrides into one config dict."""

from __future__ import annotations

import copy
import dataclasses
import enum
import hashlib
import json
import types
import typing
from pathlib import Path

import yaml

from recipe.errors import ConfigError
from recipe.record import SECRET_NAME

CONFIG_DIR = Path(__file__).parent / "configs"
# Keys a profile may have; anything else is a typo we refuse rather than silently ignore.
TOP_LEVEL_KEYS = {
    "profile", "description", "model", "data", "num_labels", "tokenize", "train",
    "tiny_model", "smoke_data", "tracking", "precision", "threads",
    "dropout", "deterministic",   # the parity profile (docs/parity.md)
}
# The kit's own settings and their types (train.* is checked against TrainingArguments itself).
KIT_TYPES = {"profile": str, "description": str, "model": str, "data": str, "num_labels": int, "threads": int,
             "precision": str, "tokenize.max_length": int, "tokenize.padding": str,
             "tokenize.truncation": bool, "tracking.project": str,
             "smoke_data.train": int, "smoke_data.validation": int, "smoke_data.seed": int,
             "tiny_model.*": "BertConfig"}   # each key: the type of BertConfig's own default
SECTIONS = ("tokenize", "train", "tiny_model", "smoke_data", "tracking")
METRICS = ("accuracy", "mcc")   # what --threshold may name: the summary's final metrics
TOKENIZE_KEYS = {"max_length", "padding", "truncation"}
PADDING_CHOICES = {"max_length", "dynamic"}
PRECISION_CHOICES = ("fp32", "bf16")   # resolved per device by recipe.facade.resolve_speed_settings


def available_profiles() -> list[str]:
    return sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))


def profile_path(profile: str) -> Path:
    """A profile is a name under recipe/configs/ or a path to a YAML file."""
    candidate = Path(profile)
    if candidate.suffix in {".yaml", ".yml"}:
        if not candidate.is_file():
            raise ConfigError(f"profile file {candidate} does not exist",
                              fix=f"pass one of {available_profiles()} or an existing YAML file")
        return candidate
    path = CONFIG_DIR / f"{profile}.yaml"
    if not path.is_file():
        raise ConfigError(f"unknown profile {profile!r}", fix=f"use one of {available_profiles()}")
    return path


def load_profile(profile: str) -> dict:
    path = profile_path(profile)
    try:
        config = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise ConfigError(f"{where}: not valid YAML ({getattr(err, 'problem', err)})") from None
    if not isinstance(config, dict):
        raise ConfigError(f"{path}: a profile must be a mapping of settings")
    config.setdefault("profile", path.stem)
    validate(config, source=str(path))
    return config


def parse_override(text: str) -> tuple[list[str], object]:
    """`train.learning_rate=1e-3` -> (["train", "learning_rate"], 0.001); values are YAML scalars."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} is not KEY=VALUE", fix="write e.g. --set train.learning_rate=3e-5")
    key, raw = text.split("=", 1)
    if any(SECRET_NAME.search(part) for part in key.strip().split(".")):
        raise ConfigError(f"--set {key.strip()}=...: secrets are not settings (they would be stored in the "
                          "run record, the checkpoints' training_args.bin and the tracker)",
                          fix="use the environment, e.g. HF_TOKEN=... or SWANLAB_API_KEY=... before the command")
    return key.strip().split("."), parse_scalar(raw)


def parse_scalar(raw: str):
    """YAML scalar, except that `3e-3` is a number (YAML 1.1 reads it as a string)."""
    try:
        value = yaml.safe_load(raw) if raw != "" else ""
    except yaml.YAMLError:
        return raw
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def apply_overrides(config: dict, overrides: list[str]) -> dict:
    config = copy.deepcopy(config)
    for text in overrides:
        path, value = parse_override(text)
        node = config
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {text!r}: {part!r} is not a section")
        node[path[-1]] = value
    validate(config, source="--set")
    return config


def validate(config: dict, source: str) -> None:
    unknown = set(config) - TOP_LEVEL_KEYS
    if unknown:
        raise ConfigError(f"{source}: unknown setting(s) {sorted(unknown)}",
                          fix=f"valid top-level settings are {sorted(TOP_LEVEL_KEYS)}")
    tokenize = config.get("tokenize", {}) or {}
    unknown = set(tokenize) - TOKENIZE_KEYS
    if unknown:
        raise ConfigError(f"{source}: unknown tokenize setting(s) {sorted(unknown)}",
                          fix=f"valid: {sorted(TOKENIZE_KEYS)}")
    padding = tokenize.get("padding", "max_length")
    if padding not in PADDING_CHOICES:
        raise ConfigError(f"{source}: tokenize.padding={padding!r}", fix=f"use one of {sorted(PADDING_CHOICES)}")
    precision = config.get("precision", "fp32")
    if precision not in PRECISION_CHOICES:
        raise ConfigError(f"{source}: precision={precision!r}",
                          fix=f"use one of {list(PRECISION_CHOICES)} (bf16 runs fp32 where the device lacks it)")
    for section in SECTIONS:
        if not isinstance(config.get(section, {}) or {}, dict):
            raise ConfigError(f"{source}: {section} must be a section of settings, not {config[section]!r}")
    check_kit_types(config, source)
    dropout = config.get("dropout")
    if dropout is not None and (not isinstance(dropout, (int, float)) or not 0.0 <= dropout < 1.0):
        raise ConfigError(f"{source}: dropout={dropout!r} must be a probability in [0, 1) (0 turns dropout off)")
    if not isinstance(config.get("deterministic", False), bool):
        raise ConfigError(f"{source}: deterministic={config['deterministic']!r}", fix="use true or false")
    epochs = (config.get("train") or {}).get("num_train_epochs", 3)
    if isinstance(epochs, (int, float)) and not isinstance(epochs, bool) and not epochs > 0:
        raise ConfigError(f"{source}: train.num_train_epochs={epochs!r}: a run must train",
                          fix="pass a number of epochs above 0, e.g. --epochs 1")
    if config.get("threads") is not None and config["threads"] < 1:
        raise ConfigError(f"{source}: threads={config['threads']!r} must be 1 or more")


def check_kit_types(config: dict, source: str) -> None:
    for name, expected in KIT_TYPES.items():
        section, _, key = name.rpartition(".")
        node = config.get(section) or {} if section else config
        for found in (node if key == "*" else [key] if key in node else []):
            kind = _bert_config_type(found) if expected == "BertConfig" else expected
            _check_value(f"{section + '.' if section else ''}{found}", node[found], kind, source)


def _bert_config_type(key: str) -> type:
    """tiny_model.* are BertConfig arguments: dropout probabilities are numbers, sizes whole numbers."""
    from transformers import BertConfig
    return float if isinstance(getattr(BertConfig(), key, None), float) else int


def check_types(settings_class, settings: dict, section: str) -> None:
    """Each setting against the type its (dataclass) owner declares, e.g. TrainingArguments: a
    wrong type is a ConfigError naming the key and the type, before anything is written."""
    try:
        hints = typing.get_type_hints(settings_class)
    except Exception:  # noqa: BLE001 - unresolvable annotations: fall back to the raw ones
        hints = {f.name: f.type for f in dataclasses.fields(settings_class)}
    for key, value in settings.items():
        if key in hints:
            _check_value(f"{section}.{key}", value, hints[key], "--set")


def _check_value(name: str, value, expected, source: str) -> None:
    if not _matches(value, expected):
        kind = _describe(expected)
        raise ConfigError(f"{source}: {name}={value!r} is not {kind}", fix=f"give {name} {kind}, e.g. --set {name}=...")


def _matches(value, expected) -> bool:
    origin = typing.get_origin(expected)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, arg) for arg in typing.get_args(expected))
    if expected is type(None):
        return value is None
    if expected is bool:
        return isinstance(value, bool)
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if expected is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if expected is str:
        return isinstance(value, str)
    if isinstance(expected, type) and issubclass(expected, enum.Enum):
        return isinstance(value, expected) or value in {member.value for member in expected}
    if origin in (list, dict, tuple):
        return isinstance(value, origin)
    return True   # a type this check does not know (Any, a callable, ...): the owner checks it


def _describe(expected) -> str:
    origin = typing.get_origin(expected)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(arg) for arg in typing.get_args(expected))
    if isinstance(expected, type) and issubclass(expected, enum.Enum):
        return "one of " + ", ".join(repr(member.value) for member in expected)
    names = {bool: "true or false", int: "a whole number", float: "a number", str: "text", type(None): "null"}
    return names.get(expected, getattr(expected, "__name__", str(expected)))


def parse_thresholds(texts: list[str]) -> dict[str, float]:
    """--threshold accuracy=0.7 (repeatable) -> {"accuracy": 0.7}."""
    limits = {}
    for text in texts:
        metric, _, raw = text.partition("=")
        value = parse_scalar(raw)
        if metric not in METRICS or isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not -1.0 <= value <= 1.0:
            raise ConfigError(f"--threshold {text!r}: expected METRIC=VALUE with METRIC one of {list(METRICS)} "
                              "and VALUE a number between -1 and 1", fix="e.g. --threshold accuracy=0.7")
        limits[metric] = float(value)
    return limits


def canonical(value):
    """The value as it is hashed and compared: a whole float is the integer it equals, so
    `--epochs 3` (parsed as 3.0) and a profile's `3` are one setting."""
    if isinstance(value, dict):
        return {key: canonical(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [canonical(item) for item in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def config_sha256(config: dict) -> str:
    return hashlib.sha256(json.dumps(canonical(config), sort_keys=True, default=str).encode()).hexdigest()


def flatten(node, prefix: str = "") -> dict:
    """{"a": {"b": 1}} -> {"a.b": 1}."""
    if isinstance(node, dict) and (node or not prefix):
        out = {}
        for key, value in node.items():
            out.update(flatten(value, f"{prefix}{key}."))
        return out
    return {prefix.rstrip("."): node}   # a leaf, or an empty section (it differs from an absent one)


ABSENT = "<absent>"


def differences(before: dict, after: dict) -> list[tuple[str, object, object]]:
    """(dotted key, before, after) for every setting whose canonical value differs, sorted by key.
    Empty exactly when the two configs hash alike (config_sha256)."""
    a, b = flatten(canonical(before)), flatten(canonical(after))

    def hashed(value):   # as config_sha256 sees it: True is not 1, [1, 2] is not [2, 1]
        return json.dumps(value, sort_keys=True, default=str)
    return [(key, a.get(key, ABSENT), b.get(key, ABSENT)) for key in sorted(set(a) | set(b), key=str)
            if hashed(a.get(key, ABSENT)) != hashed(b.get(key, ABSENT))]
