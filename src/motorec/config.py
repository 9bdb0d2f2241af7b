"""Layered YAML config: defaults < dataset < model < --config file < --set key=value.

Every key a user sets must already exist in the defaults or the model's file; a typo gets an
error suggesting the nearest valid key instead of being silently ignored.
"""
from __future__ import annotations

import copy
import re
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from motorec.errors import MotorecError, did_you_mean


class _Loader(yaml.SafeLoader):
    """SafeLoader that also reads `1e-4` as a float (YAML 1.1 wants `1.0e-4`, users write `1e-4`)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*\.[0-9_]*(?:[eE][-+]?[0-9]+)?|\.[0-9_]+(?:[eE][-+]?[0-9]+)?"
               r"|[0-9][0-9_]*[eE][-+]?[0-9]+|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"),
    list("-+0123456789."),
)


def load_yaml(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)


def _read_yaml(path: Path | Any, what: str) -> dict[str, Any]:
    try:
        data = load_yaml(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise MotorecError(f"{what}: invalid YAML ({exc}).") from exc
    if not isinstance(data, dict):
        raise MotorecError(f"{what}: expected a mapping of config keys at the top level.")
    return data


def packaged(relative: str) -> Any:
    return resources.files("motorec") / "configs" / relative


def flatten(cfg: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in cfg.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def merge(base: dict[str, Any], over: dict[str, Any], where: str, strict: bool = True) -> dict[str, Any]:
    """Deep-merge `over` into a copy of `base`; with strict, unknown keys are errors."""
    out = copy.deepcopy(base)
    for k, v in over.items():
        if k not in out:
            if strict:
                valid = list(flatten(base))
                raise MotorecError(f"{where}: unknown config key '{k}'.{did_you_mean(k, list(base) + valid)}")
            out[k] = copy.deepcopy(v)
        elif isinstance(out[k], dict) and isinstance(v, dict) and out[k]:
            out[k] = merge(out[k], v, f"{where} (under '{k}')", strict)
        elif _is_number(out[k]) and not _is_number(v):
            raise MotorecError(f"{where}: config key '{k}' expects a number (default {out[k]!r}), got {v!r}.")
        else:
            out[k] = copy.deepcopy(v)
    return out


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def parse_override(text: str, cfg: dict[str, Any]) -> dict[str, Any]:
    """'a.b=v' -> nested dict; a bare key that names exactly one nested key ('n_layers') is resolved."""
    if "=" not in text:
        raise MotorecError(f"--set '{text}': expected key=value.")
    key, raw = text.split("=", 1)
    key = key.strip()
    try:
        value = load_yaml(raw)
    except yaml.YAMLError:
        value = raw
    flat = flatten(cfg)
    if key not in flat and not any(f.startswith(key + ".") for f in flat):
        matches = [f for f in flat if f.endswith("." + key)]
        if len(matches) == 1:
            key = matches[0]
        else:
            raise MotorecError(f"--set '{text}': unknown config key '{key}'.{did_you_mean(key, flat)}")
    node: dict[str, Any] = {}
    cur = node
    parts = key.split(".")
    for p in parts[:-1]:
        cur = cur.setdefault(p, {})
    cur[parts[-1]] = value
    return node


def build_config(
    model: str,
    dataset_name: str | None = None,
    config_file: str | Path | None = None,
    overrides: list[str] | None = None,
) -> dict[str, Any]:
    cfg = _read_yaml(packaged("defaults.yaml"), "defaults.yaml")
    if dataset_name:
        ds_file = packaged(f"datasets/{dataset_name}.yaml")
        if ds_file.is_file():
            cfg = merge(cfg, _read_yaml(ds_file, f"datasets/{dataset_name}.yaml"), f"datasets/{dataset_name}.yaml", strict=False)
    model_file = packaged(f"models/{model}.yaml")
    if model_file.is_file():
        cfg = merge(cfg, _read_yaml(model_file, f"models/{model}.yaml"), f"models/{model}.yaml", strict=False)
    if config_file is not None:
        path = Path(config_file)
        if not path.is_file():
            raise MotorecError(f"{path}: config file not found.")
        cfg = merge(cfg, _read_yaml(path, str(path)), str(path))
    for text in overrides or []:
        cfg = merge(cfg, parse_override(text, cfg), f"--set '{text}'")
    cfg["model_name"] = model
    return cfg
