"""The interface every stance model shares: fit, prepare, predict_proba, predict, save, load.

A saved model is a folder holding ``stance.json`` (backend, task, labels, input format,
training facts) beside the backend's own files, so loading needs nothing else.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.config import ModelConfig, TaskConfig
from pipeline.files import atomic_dir
from pipeline.models.encoders import ModelLoadError
from pipeline.models.inputs import InputFormatter, Row, as_rows

SPEC_FILE = "stance.json"
FORMAT_VERSION = 1

# Called after each training epoch with metrics such as train_loss, dev_loss, dev_f_avg,
# dev_macro_f1 (each call may hold some of them). It may raise to stop training.
EpochHook = Callable[[int, dict[str, float]], None]


def class_weights(y: np.ndarray, k: int, mode: str) -> np.ndarray:
    """n / (k * count) per class ('balanced', as scikit-learn), its square root, or ones."""
    if mode == "none":
        return np.ones(k)
    counts = np.bincount(y, minlength=k).astype(float)
    weights = len(y) / (k * np.maximum(counts, 1.0))
    return np.sqrt(weights) if mode == "sqrt" else weights


class StanceModel:
    """The predict interface every backend shares."""

    backend: str = ""

    def __init__(self, task: TaskConfig, model_cfg: ModelConfig):
        self.task = task
        self.model_cfg = model_cfg
        self.formatter = InputFormatter(task, model_cfg.input)
        self.info: dict[str, Any] = {}

    @property
    def labels(self) -> list[str]:
        return list(self.task.labels)

    @property
    def source(self) -> str:
        """Where the model's weights come from (an MLflow tag): the base model, or the backend's name."""
        return self.backend

    # -- to implement
    def fit(self, train, dev=None, on_epoch: EpochHook | None = None) -> dict[str, Any]:
        raise NotImplementedError

    def _predict_prepared(self, rows: list[Row], batch_size: int | None = None) -> np.ndarray:
        """(n, k) probabilities for prepared rows, columns in ``self.labels`` order."""
        raise NotImplementedError

    def _save_files(self, folder: Path) -> None:
        raise NotImplementedError

    @classmethod
    def _load_files(cls, folder: Path, task: TaskConfig, model_cfg: ModelConfig, spec: dict) -> StanceModel:
        raise NotImplementedError

    # -- shared
    def use_task(self, task: TaskConfig) -> None:
        """Predict another task's actors and targets: the model reads actor names and target
        wordings, so new ones need no retraining (how well it does on them is for the user to measure)."""
        if list(task.labels) != self.labels:
            raise ModelLoadError(f"the task's labels {list(task.labels)} differ from the model's {self.labels}")
        self.task = task
        self.formatter = InputFormatter(task, self.model_cfg.input)

    def prepare(self, rows) -> list[Row]:
        """The model's input preparation (validation; the long-sentence window where a model has a
        length limit). Every door goes through it, so all give the model the same input."""
        return [r if r.prepared else self._prepare_row(r) for r in as_rows(rows, self.task, self.formatter)]

    def _prepare_row(self, row: Row) -> Row:
        return replace(row, prepared=True)

    def predict_proba(self, rows, batch_size: int | None = None) -> np.ndarray:
        """(n, k) probabilities, columns in ``self.labels`` order."""
        return self._predict_prepared(self.prepare(rows), batch_size)

    def predict(self, rows) -> list[dict[str, Any]]:
        """A label and a probability per label for each (text, actor, target) row."""
        probs = self.predict_proba(rows)
        return [
            {"label": label, "probs": dict(zip(self.labels, map(float, p)))}
            for label, p in zip(self.task.predicted(probs), probs)
        ]

    def spec(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "backend": self.backend,
            "labels": self.labels,
            "task": self.task.model_dump(mode="json"),
            "model": self.model_cfg.model_dump(),
            "info": self.info,
        }

    def save(self, folder: str | Path) -> Path:
        """Write the model to a temporary folder beside ``folder``, then move it into place."""
        with atomic_dir(folder) as tmp:
            self._save_files(tmp)
            (tmp / SPEC_FILE).write_text(json.dumps(self.spec(), indent=2, ensure_ascii=False) + "\n")
        return Path(folder)
