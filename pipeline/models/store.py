"""Where a saved model lives and what its ``stance.json`` says, for every loader.

``locate(uri)`` takes a model folder, ``runs:/<run_id>/model`` or ``models:/<name>@<alias>``
(MLflow resolves the last two against the tracking store); ``read_spec(folder)`` reads and checks
the spec. The registry builds the backend from it; the zero-shot backend uses it to load its
stance model without importing the registry (which imports every backend, itself included).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from pipeline.config import ModelConfig, TaskConfig
from pipeline.models.encoders import ModelLoadError

SPEC_FILE = "stance.json"
MLFLOW_SCHEMES = ("runs:/", "models:/")
# A scheme of two letters or more ("s3://", "http://"); one letter would be a Windows drive.
_URI_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:/")


def is_mlflow_uri(uri: str) -> bool:
    return str(uri).startswith(MLFLOW_SCHEMES)


def locate(uri: str | Path) -> Path:
    """The local folder of a model path, ``runs:/<id>/...`` or ``models:/<name>@<alias>`` URI."""
    uri = str(uri)
    if not is_mlflow_uri(uri):
        if _URI_SCHEME.match(uri):
            raise ModelLoadError(
                f"unknown model URI {uri!r}: expected a model folder, runs:/<run_id>/model or models:/<name>@<alias>"
            )
        return Path(uri)
    import mlflow

    try:
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri))
    except Exception as exc:  # MLflow raises several types for a missing run, model or alias
        raise ModelLoadError(f"cannot resolve model URI {uri!r} in {mlflow.get_tracking_uri()}: {exc}") from exc
    # A logged pyfunc model keeps the stance model folder under artifacts/<name>/.
    for candidate in (local, *sorted(p.parent for p in local.glob(f"**/{SPEC_FILE}"))):
        if (candidate / SPEC_FILE).is_file():
            return candidate
    raise ModelLoadError(f"{uri} does not hold a stance model (no {SPEC_FILE} found in {local})")


def read_spec(uri: str | Path) -> tuple[Path, dict, TaskConfig, ModelConfig]:
    """The model's folder, its spec, task and model config; errors name the place and what is wrong."""
    folder = locate(uri)
    if not folder.exists():
        raise ModelLoadError(f"model folder {folder} does not exist (run `make train` first?)")
    spec_path = folder / SPEC_FILE
    if not spec_path.is_file():
        raise ModelLoadError(f"{folder} is not a saved stance model: no {SPEC_FILE} in it")
    try:
        spec = json.loads(spec_path.read_text())
        task = TaskConfig.model_validate(spec["task"])
        model_cfg = ModelConfig.model_validate(spec["model"])
        spec["backend"]  # noqa: B018 - a KeyError here is an invalid spec
    except (KeyError, ValueError) as exc:
        raise ModelLoadError(f"{spec_path} is not a valid model spec: {exc}") from exc
    return folder, spec, task, model_cfg
