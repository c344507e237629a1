"""One experiment: the task, the data, the model, its training and its tracking."""

from __future__ import annotations

from typing import Any

from pydantic import Field, ValidationInfo, field_validator

from pipeline.config.sections import (
    DataConfig,
    ModelConfig,
    SweepConfig,
    TfidfConfig,
    TrainingConfig,
    ZeroShotConfig,
)
from pipeline.config.task import TaskConfig, _check_id, _Strict


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
            if model.runtime != "torch" and v.method != "stance":
                raise ValueError(
                    f"model.runtime {model.runtime!r} runs the zero-shot stance model; method {v.method!r} "
                    "runs on torch only (set model.runtime: torch, or zeroshot.method: stance)"
                )
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
