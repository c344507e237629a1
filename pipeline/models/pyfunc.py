"""The MLflow pyfunc around a saved stance model (logged with models-from-code)."""

from __future__ import annotations

import mlflow.pyfunc
import numpy as np
import pandas as pd

from pipeline.config import TaskConfig


def predictions_frame(probs: np.ndarray, task: TaskConfig) -> pd.DataFrame:
    """A ``label`` column and one ``prob_<label>`` column per label (columns of ``probs`` follow the labels)."""
    out = pd.DataFrame({"label": task.predicted(probs)})
    for j, lab in enumerate(task.labels):
        out[f"prob_{lab}"] = probs[:, j].astype(float) if len(probs) else []
    return out


# The loading options a logged model accepts (MLflow passes on only the keys declared when logging).
MODEL_CONFIG = {"runtime": None, "threads": None}


class StancePyfunc(mlflow.pyfunc.PythonModel):
    """Input: a DataFrame with text, actor, target. Output: label and prob_<label> columns.

    Loading options through MLflow's ``model_config`` (``mlflow.pyfunc.load_model(uri,
    model_config=...)``, ``spark_udf(..., model_config=...)``): ``runtime`` (torch, onnx,
    onnx-int8; default the model's own) and ``threads`` (default one per core).
    """

    def load_context(self, context) -> None:
        from pipeline.models.registry import load_model

        options = context.model_config or {}
        self.model = load_model(context.artifacts["model"], options.get("runtime"), options.get("threads"))

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        from mlflow.exceptions import MlflowException
        from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

        from pipeline.models.inputs import InputError

        try:
            probs = self.model.predict_proba(model_input)
        except InputError as exc:  # a bad row is the caller's error: HTTP 400 from the scoring server
            raise MlflowException(str(exc), error_code=INVALID_PARAMETER_VALUE) from exc
        return predictions_frame(probs, self.model.task)
