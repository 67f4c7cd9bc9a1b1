"""Profiles (YAML under recipe/configs/) resolved with command-line overrides into one config dict."""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path

import yaml

from recipe.errors import ConfigError

CONFIG_DIR = Path(__file__).parent / "configs"
# Keys a profile may have; anything else is a typo we refuse rather than silently ignore.
TOP_LEVEL_KEYS = {
    "profile", "description", "model", "data", "num_labels", "tokenize", "train",
    "tiny_model", "smoke_data", "tracking", "label_noise", "precision",
    "dropout", "deterministic",   # the parity profile (docs/parity.md)
}
TOKENIZE_KEYS = {"max_length", "padding", "truncation", "pretokenize"}
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
    dropout = config.get("dropout")
    if dropout is not None and (not isinstance(dropout, (int, float)) or not 0.0 <= dropout < 1.0):
        raise ConfigError(f"{source}: dropout={dropout!r} must be a probability in [0, 1) (0 turns dropout off)")
    if not isinstance(config.get("deterministic", False), bool):
        raise ConfigError(f"{source}: deterministic={config['deterministic']!r}", fix="use true or false")
    noise = config.get("label_noise", 0.0)
    if not isinstance(noise, (int, float)) or not 0.0 <= noise <= 1.0:
        raise ConfigError(f"{source}: label_noise={noise!r} must be a fraction between 0 and 1")


def config_sha256(config: dict) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()
