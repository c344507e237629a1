"""Every backend, imported explicitly; building one from a config; the one model loader.

``load_model(uri)`` takes a model folder, ``runs:/<run_id>/model`` or
``models:/<name>@<alias>`` (MLflow resolves the last two against the tracking store; see
``pipeline.models.store``).
"""

from __future__ import annotations

from pathlib import Path

from pipeline.config import Config, ModelConfig
from pipeline.models.base import StanceModel
from pipeline.models.baselines import MajorityModel, TfidfModel
from pipeline.models.encoders import ModelLoadError
from pipeline.models.store import SPEC_FILE, is_mlflow_uri, locate, read_spec
from pipeline.models.transformer import TransformerModel
from pipeline.models.zeroshot import ZeroShotModel
from pipeline.process import bound_heap

__all__ = ["BACKENDS", "build_model", "is_mlflow_uri", "load_model", "locate", "model_source"]

BACKENDS: dict[str, type[StanceModel]] = {
    cls.backend: cls for cls in (MajorityModel, TfidfModel, TransformerModel, ZeroShotModel)
}


def build_model(config: Config) -> StanceModel:
    """A fresh, untrained model for the config's backend."""
    return BACKENDS[config.model.backend].from_config(config)


def model_source(config: Config) -> str:
    """Where the config's model weights come from (base model, zero-shot model, or the backend)."""
    return build_model(config).source


def load_model(uri: str | Path, runtime: str | None = None, threads: int | None = None) -> StanceModel:
    """Load a saved model from a folder or an MLflow URI; errors name the place and what is wrong.

    ``runtime`` (torch, onnx, onnx-int8) overrides the one the model was saved with; an ONNX
    runtime the folder has no file for yet is exported into it first. ``threads``: inference
    threads (default: one per core).
    """
    bound_heap()  # inference memory stays level over any input (see pipeline.process)
    folder, spec, task, model_cfg = read_spec(uri)
    if runtime is not None or threads is not None:
        update = {"runtime": runtime or model_cfg.runtime, "threads": threads or model_cfg.threads}
        try:
            model_cfg = ModelConfig.model_validate(model_cfg.model_dump() | update)
        except ValueError as exc:
            raise ModelLoadError(f"{folder}: {exc}") from None
    try:
        cls = BACKENDS[spec["backend"]]
    except KeyError:
        raise ModelLoadError(
            f"{folder / SPEC_FILE} is not a valid model spec: unknown backend {spec['backend']!r}"
        ) from None
    model = cls._load_files(folder, task, model_cfg, spec)
    model.info = spec.get("info", {})
    return model
