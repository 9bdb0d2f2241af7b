"""One configuration system: layered YAML validated into typed, range-checked config objects.

Layers, later wins: `configs/defaults.yaml` < `configs/models/<model>.yaml` < `--config FILE` <
`--set key=value`. The merged mapping is validated once into a `RunConfig` whose `model` section
is the model's own parameter class (registered with `register_params` by the model registry), so a
typo, a value of the wrong type or out of range is an error before anything runs — naming the key,
the allowed range and the layer that set it — instead of a crash or a silently wrong run.

YAML files hold the values (the packaged ones are the defaults); the classes here hold the types
and ranges. Every config class is a `ConfigModel`: unknown keys are refused, assignment is checked.
"""

from __future__ import annotations

import copy
import hashlib
import importlib
import json
import os
import re
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Generic, Literal, TypeVar, cast

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import ErrorDetails

from motorec.errors import MotorecError, did_you_mean


class _Loader(yaml.SafeLoader):
    """SafeLoader that also reads `1e-4` as a float (YAML 1.1 wants `1.0e-4`, users write `1e-4`)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"^[-+]?(?:[0-9][0-9_]*\.[0-9_]*(?:[eE][-+]?[0-9]+)?|\.[0-9_]+(?:[eE][-+]?[0-9]+)?"
        r"|[0-9][0-9_]*[eE][-+]?[0-9]+|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+0123456789."),
)
# a bare nan / inf typed on the command line is the number a user means (then refused as not finite)
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float", re.compile(r"^(?:[-+]?(?:inf|Inf|INF)|nan|NaN|NAN)$"), list("-+iInN")
)


def load_yaml(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)


# ---------------------------------------------------------------------------------- typed objects
class ConfigModel(BaseModel):
    """Base of every config class: unknown keys are errors, assignments are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=())


class NoParams(ConfigModel):
    """The parameters of a model that declares no `Params` class: none (any key is an unknown key)."""


def _unique(values: list[int]) -> list[int]:
    if len(set(values)) != len(values):
        raise ValueError("values must be distinct")
    return values


PositiveInt = Annotated[int, Field(ge=1)]
NonNegativeInt = Annotated[int, Field(ge=0)]
PositiveFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]
NonNegativeFloat = Annotated[float, Field(ge=0, allow_inf_nan=False)]
UnitInterval = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]
Probability = Annotated[float, Field(ge=0, lt=1, allow_inf_nan=False)]  # a share that must leave something
Seed = Annotated[int, Field(ge=0, lt=2**32)]
Seeds = Annotated[list[Seed], Field(min_length=1), AfterValidator(_unique)]
Device = Annotated[str, Field(pattern=r"^(auto|cpu|cuda(:\d+)?|mps)$")]


class TrainConfig(ConfigModel):
    epochs: Annotated[int, Field(ge=1, le=1_000_000)]
    batch_size: Annotated[int, Field(ge=1, le=2**26)]
    lr: Annotated[float, Field(gt=0, le=10, allow_inf_nan=False)]
    weight_decay: NonNegativeFloat
    eval_every: PositiveInt
    patience: PositiveInt  # evaluations without a better valid recall@20 before stopping
    progress: bool
    threads: Annotated[int, Field(ge=0, le=1024)]  # torch CPU threads (0 = torch's default)


class EvalConfig(ConfigModel):
    ks: Annotated[list[Annotated[int, Field(ge=1, le=1000)]], Field(min_length=1), AfterValidator(_unique)]
    batch_size: Annotated[int, Field(ge=0, le=2**20)]  # users per batch; 0 = as many as memory_mb allows
    memory_mb: Annotated[float, Field(gt=0, le=2**20, allow_inf_nan=False)] = 1024  # score memory of one batch


class DistConfig(ConfigModel):
    timeout_s: Annotated[float, Field(gt=0, le=86_400, allow_inf_nan=False)] = (
        300  # a silent rank fails the run after this
    )


class DataConfig(ConfigModel):
    split: str | None  # .inter file inside the data folder
    drop_users_without_train: bool
    cache_dir: str | None  # fitted tokenizers and k-NN graphs; null = ~/.cache/motorec
    path: str | None = None  # the data folder, recorded by the run


class TokensConfig(ConfigModel):
    tokenizer: str
    params: dict[str, Any]
    seed: Seed
    cache: bool


class MotorConfig(ConfigModel):
    cross_layers: NonNegativeInt
    rank: PositiveInt
    cold_readout: Literal["ego", "mean"]
    cold_dropout: Probability


class LogConfig(ConfigModel):
    tensorboard: str | None = None  # folder for TensorBoard event files (optional extra)


P = TypeVar("P", bound=ConfigModel)


class RunConfig(ConfigModel, Generic[P]):
    """Everything one `motorec train` run is made of; saved whole in results.json."""

    device: Device
    seeds: Seeds
    item_repr: str
    tokens: TokensConfig
    motor: MotorConfig
    data: DataConfig
    train: TrainConfig
    eval: EvalConfig
    dist: DistConfig = DistConfig()
    log: LogConfig = LogConfig()
    model_name: str
    model: P

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def identity_hash(self) -> str:
        """Hash of what defines the run's result (not how it is watched: progress, threads, logging)."""
        d = self.to_dict()
        d["train"] = {k: v for k, v in d["train"].items() if k not in ("progress", "threads")}
        for key in ("log", "device"):
            d.pop(key, None)
        d["data"] = {k: v for k, v in d["data"].items() if k != "cache_dir"}
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()


def run_config_class(params: type[ConfigModel]) -> type[RunConfig[Any]]:
    """`RunConfig` whose `model` section is validated into `params` (a class chosen at run time)."""
    return cast("type[RunConfig[Any]]", RunConfig.__class_getitem__(params))  # pydantic parametrises at run time


# ----------------------------------------------------------------------- model parameter registry
MODEL_PARAMS: dict[str, type[ConfigModel]] = {}


def register_params(model_name: str, params: type[ConfigModel]) -> None:
    """Called by the model registry: the parameter class `model:` is validated into."""
    MODEL_PARAMS[model_name] = params


def model_params_class(model_name: str) -> type[ConfigModel]:
    """The registered parameter class of `model_name` (the built-in models register on import)."""
    if model_name not in MODEL_PARAMS:
        importlib.import_module("motorec.models")  # the registry lives a layer above: import it by name
    if model_name not in MODEL_PARAMS:
        raise MotorecError(
            f"unknown model '{model_name}'. Known: {', '.join(sorted(MODEL_PARAMS))}."
            f"{did_you_mean(model_name, MODEL_PARAMS)}"
        )
    return MODEL_PARAMS[model_name]


# ------------------------------------------------------------------------------- YAML layering
def _read_yaml(path: Path | Any, what: str) -> dict[str, Any]:
    try:
        data = load_yaml(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise MotorecError(f"{what}: invalid YAML ({exc}).") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise MotorecError(f"{what}: cannot be read ({exc}).") from exc
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


def merge(
    base: dict[str, Any],
    over: dict[str, Any],
    where: str,
    strict: bool = True,
    origins: dict[str, str] | None = None,
    prefix: str = "",
) -> dict[str, Any]:
    """Deep-merge `over` into a copy of `base`; with strict, unknown keys are errors.

    `origins` (flat key -> layer) records which layer set each value, for error messages.
    """
    out = copy.deepcopy(base)
    for k, v in over.items():
        key = f"{prefix}{k}"
        if k not in out:
            if strict:
                valid = list(flatten(base))
                raise MotorecError(f"{where}: unknown config key '{k}'.{did_you_mean(k, list(base) + valid)}")
            out[k] = copy.deepcopy(v)
        elif isinstance(out[k], dict) and isinstance(v, dict) and out[k]:
            out[k] = merge(out[k], v, f"{where} (under '{k}')", strict, origins, key + ".")
            continue
        elif _is_number(out[k]) and not _is_number(v):
            raise MotorecError(f"{where}: config key '{k}' expects a number (default {out[k]!r}), got {v!r}.")
        else:
            out[k] = copy.deepcopy(v)
        if origins is not None:
            for flat in flatten({key: v}) if isinstance(v, dict) else [key]:
                origins[flat] = where.split(" (under '")[0]
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


def layered(
    model: str,
    config_file: str | os.PathLike[str] | None = None,
    overrides: list[str] | None = None,
    origins: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The merged (not yet validated) mapping of every layer."""
    model_file = f"models/{model}.yaml"
    files = ["defaults.yaml"] + ([model_file] if packaged(model_file).is_file() else [])
    cfg = layer_files(files, config_file, overrides, origins)
    cfg["model_name"] = model
    return cfg


def layer_files(
    files: list[str],
    config_file: str | os.PathLike[str] | None = None,
    overrides: list[str] | None = None,
    origins: dict[str, str] | None = None,
    base: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Packaged YAML `files` (under configs/; each may add keys), then the user's file and `--set`
    (known keys only), merged over `base` (e.g. a schema's defaults, so all its keys are settable)."""
    cfg = copy.deepcopy(base or {})
    for name in files:
        cfg = merge(cfg, _read_yaml(packaged(name), name), name, strict=False)
    if config_file is not None:
        path = Path(config_file)
        if not path.is_file():
            raise MotorecError(f"{path}: config file not found.")
        cfg = merge(cfg, _read_yaml(path, str(path)), str(path), origins=origins)
    for text in overrides or []:
        cfg = merge(cfg, parse_override(text, cfg), f"--set '{text}'", origins=origins)
    return cfg


def build_config(
    model: str, config_file: str | os.PathLike[str] | None = None, overrides: list[str] | None = None
) -> RunConfig:
    """The validated run config of `model` with the user's config file and `--set` overrides."""
    origins: dict[str, str] = {}
    return validate_run_config(layered(model, config_file, overrides, origins), origins)


def validate_run_config(cfg: dict[str, Any], origins: dict[str, str] | None = None, source: str = "") -> RunConfig:
    schema = run_config_class(model_params_class(str(cfg.get("model_name", ""))))
    try:
        return schema.model_validate(cfg)
    except ValidationError as exc:
        raise config_error(exc, schema, origins or {}, source) from None


def validate_params(schema: type[P], params: Any, source: str = "", origins: dict[str, str] | None = None) -> P:
    """A mapping validated into `schema` (a model's or tokenizer's parameters, a task's layered config);
    `origins` (flat key -> layer) names the layer that set a bad value."""
    try:
        return schema.model_validate(params)
    except ValidationError as exc:
        raise config_error(exc, schema, origins or {}, source) from None


def saved_run_config(saved: dict[str, Any], source: str) -> RunConfig:
    """A run's saved config, validated by this version's schema (a key it no longer knows is named)."""
    return validate_run_config(saved, {}, source)


_RANGE_WORDS = {"greater_than_equal": ">=", "greater_than": ">", "less_than_equal": "<=", "less_than": "<"}


def _describe(err: ErrorDetails) -> str:
    kind, ctx = err["type"], err.get("ctx") or {}
    for name, op in _RANGE_WORDS.items():
        if kind == name:
            return f"must be {op} {next(iter(ctx.values()))}"
    return {
        "finite_number": "must be a finite number (not nan or inf)",
        "int_from_float": "must be a whole number",
        "int_parsing": "must be an integer",
        "int_type": "must be an integer",
        "float_parsing": "must be a number",
        "float_type": "must be a number",
        "bool_parsing": "must be true or false",
        "bool_type": "must be true or false",
        "string_type": "must be a string",
        "list_type": "must be a list",
        "dict_type": "must be a mapping",
        "too_short": f"must have at least {ctx.get('min_length', 1)} entr{'y' if ctx.get('min_length', 1) == 1 else 'ies'}",
        "literal_error": f"must be one of {ctx.get('expected', '')}",
        "string_pattern_mismatch": f"must match {ctx.get('pattern', '')}",
        "value_error": str(ctx.get("error", err["msg"])),
    }.get(kind, err["msg"][0].lower() + err["msg"][1:] if err["msg"] else kind)


def config_error(
    exc: ValidationError, schema: type[BaseModel], origins: dict[str, str], source: str = ""
) -> MotorecError:
    """One readable line per problem: the key, what is wrong, the value and the layer that set it."""
    lines = []
    for err in exc.errors():
        loc = [str(p) for p in err["loc"] if not str(p).startswith("function-")]
        key = ""
        for part in loc:
            key += f"[{part}]" if part.isdigit() else (f".{part}" if key else part)
        top = re.sub(r"\[\d+\]$", "", key)
        where = f" (set by {origins[top]})" if top in origins else ""
        if err["type"] == "extra_forbidden":
            section = key.rsplit(".", 1)[0] if "." in key else ""
            known = [f"{section}.{f}" if section else f for f in _fields_at(schema, loc[:-1])]
            lines.append(f"unknown config key '{key}'{where}.{did_you_mean(key, known)}")
        elif err["type"] == "missing":
            lines.append(f"config key '{key}' is missing")
        else:
            lines.append(f"config key '{key}'{where}: {_describe(err)}, got {err['input']!r}.")
    prefix = f"{source}: " if source else ""
    return MotorecError(prefix + ("\n".join(lines) if len(lines) > 1 else lines[0]))


def _fields_at(schema: type[BaseModel], path: list[str]) -> list[str]:
    """Field names of the config class at `path` (for suggestions after an unknown key)."""
    model: Any = schema
    for part in path:
        field = getattr(model, "model_fields", {}).get(part)
        if field is None:
            return []
        model = field.annotation
    return list(getattr(model, "model_fields", {}))
