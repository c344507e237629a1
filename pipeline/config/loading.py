"""Loading config files: ``extends:`` chains, task files, dotted overrides, validation.

A config file is YAML. It may name a parent with ``extends: <file>`` (relative to the file
itself) and then override only what differs; mappings merge key by key, everything else
(lists included) is replaced. The task may be given inline under ``task:`` or as the path
of a YAML file holding ``actors``, ``targets``, ``labels``. Every error is reported with
the dotted key and the file that set it: ``configs/x.yaml: training.lr: ...``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from pipeline.config.experiment import Config
from pipeline.config.task import ConfigError, TaskConfig


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, found {type(raw).__name__}")
    return raw


def _merge(base: dict, over: dict, origin: dict[str, Path], path: Path, prefix: str = "") -> dict:
    """Deep-merge ``over`` into a copy of ``base``, recording which file set each key."""
    out = dict(base)
    for key, value in over.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value, origin, path, dotted + ".")
        else:
            out[key] = value
            for k in [k for k in origin if k == dotted or k.startswith(dotted + ".")]:
                del origin[k]
            origin[dotted] = path
    return out


def _load_raw(path: Path, origin: dict[str, Path], seen: tuple[Path, ...] = ()) -> dict:
    path = path.resolve()
    if path in seen:
        raise ConfigError(f"{path}: 'extends' loops back to itself")
    raw = _read_yaml(path)
    parent = raw.pop("extends", None)
    merged: dict = {}
    if parent is not None:
        if not isinstance(parent, str):
            raise ConfigError(f"{path}: extends: expected a file path, found {parent!r}")
        merged = _load_raw(path.parent / parent, origin, (*seen, path))
    if isinstance(raw.get("task"), str):  # the task lives in a file of its own, and replaces the parent's
        task_path = (path.parent / raw["task"]).resolve()
        raw["task"] = _read_yaml(task_path)
        merged.pop("task", None)
        merged = _merge(merged, raw, origin, path)
        origin["task"] = task_path
        return merged
    return _merge(merged, raw, origin, path)


def _origin_of(loc: tuple, origin: dict[str, Path], default: Path) -> Path:
    parts = [str(p) for p in loc if not isinstance(p, int)]
    while parts:
        key = ".".join(parts)
        if key in origin:
            return origin[key]
        parts.pop()
    return default


def _format_loc(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def validate_mapping(model: type[BaseModel], raw: dict, origin: dict[str, Path], path: Path) -> Any:
    """Validate ``raw`` against ``model``; raise ConfigError naming key and file of each problem."""
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            loc = tuple(err["loc"])
            where = _origin_of(loc, origin, path)
            if err["type"] == "extra_forbidden":
                msg = "unknown key (check the spelling; see configs/base.yaml for the known keys)"
            elif err["type"] == "missing":
                msg = "required key is missing"
            else:
                msg = f"{err['msg']} (found {err.get('input')!r})"
            lines.append(f"{where}: {_format_loc(loc)}: {msg}")
        raise ConfigError("invalid config:\n  " + "\n  ".join(lines)) from None


def nest_dotted(dotted: dict[str, Any]) -> dict[str, Any]:
    """{"a.b": 1, "a.c": 2} -> {"a": {"b": 1, "c": 2}}: dotted keys (as for --set) as nested mappings."""
    out: dict[str, Any] = {}
    for key, value in dotted.items():
        node = out
        *parents, last = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return out


def _apply_overrides(raw: dict, overrides: dict[str, Any], origin: dict[str, Path]) -> dict:
    """Merge dotted-key overrides into a raw config, one key at a time, recording them as '<override>'."""
    for dotted, value in overrides.items():
        raw = _merge(raw, nest_dotted({dotted: value}), origin, Path("<override>"))
    return raw


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> Config:
    """Load, merge and validate an experiment config file.

    ``overrides`` maps dotted keys to values (for tests and command-line ``key=value``).
    """
    path = Path(path)
    origin: dict[str, Path] = {}
    raw = _load_raw(path, origin)
    raw = _apply_overrides(raw, overrides or {}, origin)
    return validate_mapping(Config, raw, origin, path.resolve())


def with_overrides(config: Config, overrides: dict[str, Any]) -> Config:
    """A copy of a loaded config with dotted-key overrides applied, validated again.

    Works from the config in memory, so files edited meanwhile change nothing (a sweep's
    trials all start from the config the sweep loaded).
    """
    raw = config.model_dump()
    origin: dict[str, Path] = {}
    raw = _apply_overrides(raw, overrides, origin)
    return validate_mapping(Config, raw, origin, Path("<override>"))


def load_task(path: str | Path) -> TaskConfig:
    """Load a task file (actors, targets, labels) on its own."""
    path = Path(path).resolve()
    origin: dict[str, Path] = {}
    return validate_mapping(TaskConfig, _merge({}, _read_yaml(path), origin, path), origin, path)
