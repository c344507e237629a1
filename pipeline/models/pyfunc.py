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


class StancePyfunc(mlflow.pyfunc.PythonModel):
    """Input: a DataFrame with text, actor, target. Output: label and prob_<label> columns."""

    def load_context(self, context) -> None:
        from pipeline.models.registry import load_model

        self.model = load_model(context.artifacts["model"])

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        from mlflow.exceptions import MlflowException
        from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

        from pipeline.models.inputs import InputError

        try:
            probs = self.model.predict_proba(model_input)
        except InputError as exc:  # a bad row is the caller's error: HTTP 400 from the scoring server
            raise MlflowException(str(exc), error_code=INVALID_PARAMETER_VALUE) from exc
        return predictions_frame(probs, self.model.task)
