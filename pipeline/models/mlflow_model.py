"""Models-from-code entry point that MLflow runs when it loads a logged stance model."""

import mlflow

from pipeline.models.pyfunc import StancePyfunc

mlflow.models.set_model(StancePyfunc())
