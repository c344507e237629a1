"""``evaluate(config, model_uri)``: score a saved model on the test split and log it to MLflow.

Logged under ``test/``: F_avg (mean F1 of the stance labels, SemEval-2016), macro-F1,
accuracy, bootstrap 95% intervals of both, precision/recall/F1/support per label, F_avg and
macro-F1 per target and per actor (where support allows), ECE; artefacts: a confusion
matrix per target and overall, a reliability diagram, the classification report, and a
table of misclassified examples.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.config import Config
from pipeline.data.datasets import build_dataset
from pipeline.experiments.train import prefixed, score
from pipeline.metrics import classification_report_text, confusion_matrix_figure, reliability_diagram
from pipeline.models.encoders import ModelLoadError
from pipeline.models.registry import is_mlflow_uri, load_model


def default_model_uri(config: Config) -> str:
    return str(Path(config.models_dir) / config.name)


def _log_test_artifacts(test, probs, config: Config) -> None:
    """Confusion matrices (all targets, each target), reliability diagram, report, misclassified table."""
    import mlflow

    labels = config.task.labels
    y_true, y_pred = config.task.label_names(test["label"]), config.task.predicted(probs)
    mlflow.log_figure(confusion_matrix_figure(y_true, y_pred, labels, "all targets"), "test/confusion_all.png")
    for target in config.task.target_ids:
        idx = [i for i, t in enumerate(test["target"]) if t == target]
        if idx:
            fig = confusion_matrix_figure([y_true[i] for i in idx], [y_pred[i] for i in idx], labels, target)
            mlflow.log_figure(fig, f"test/confusion_{target}.png")
    mlflow.log_figure(reliability_diagram(probs, np.asarray(test["label"]), title="test"), "test/reliability.png")
    mlflow.log_text(classification_report_text(y_true, y_pred, labels), "test/classification_report.txt")
    wrong = [i for i in range(len(y_true)) if y_true[i] != y_pred[i]]
    columns = {"id": "id", "actor": "actor", "target": "target", "text": "text"}
    table = {name: [test[col][i] for i in wrong] for name, col in columns.items()}
    table |= {
        "gold": [y_true[i] for i in wrong],
        "predicted": [y_pred[i] for i in wrong],
        "confidence": [float(probs[i].max()) for i in wrong],
    }
    mlflow.log_table(table, "test/misclassified.json")


def _training_run_or_new(model, uri: str, config: Config):
    """The run that trained the model, when it is in this tracking store; else a new evaluate run."""
    import mlflow

    from pipeline.experiments import tracking

    run_id = model.info.get("mlflow_run_id") or tracking.run_id_of_model_uri(uri)
    if run_id is not None:
        try:
            mlflow.get_run(run_id)
        except Exception:  # the model was trained against another tracking store
            run_id = None
    if run_id is not None:
        return mlflow.start_run(run_id=run_id)
    return mlflow.start_run(run_name=f"evaluate-{config.name}", tags=tracking.run_tags(config, "evaluate"))


def evaluate(config: Config, model_uri: str | None = None) -> dict[str, float]:
    import mlflow

    from pipeline.experiments import tracking

    tracking.setup(config)
    uri = model_uri or default_model_uri(config)
    if not is_mlflow_uri(uri) and not Path(uri).exists():
        hint = "run `make train` first" if model_uri is None else "check MODEL="
        raise ModelLoadError(f"no trained model at {uri}: {hint} (CONFIG={config.name})")
    model = load_model(uri)
    if model.labels != list(config.task.labels):
        raise ModelLoadError(f"model labels {model.labels} differ from the config's {config.task.labels}")
    test = build_dataset(config)["test"]
    metrics, probs = score(model, test, config, n_resamples=config.tracking.bootstrap_resamples)
    digest = tracking.split_digest(test)

    with _training_run_or_new(model, uri, config) as run, tracking.failing_run_marked():
        mlflow.log_metrics(prefixed(metrics, "test"))
        mlflow.set_tags({"test_split_digest": digest, "evaluated_model_uri": uri})
        _log_test_artifacts(test, probs, config)
        message = None
        if config.tracking.register_model and model.info.get("registered_model"):
            message = tracking.update_champion(config, run.info.run_id, metrics["f_avg"], digest)
    lo, hi = metrics.get("f_avg_ci_low"), metrics.get("f_avg_ci_high")
    ci = f" (95% CI {lo:.3f}-{hi:.3f})" if lo is not None else ""
    print(
        f"test on {len(test)} examples: F_avg {metrics['f_avg']:.4f}{ci}, macro-F1 {metrics['macro_f1']:.4f}, "
        f"ECE {metrics['ece']:.3f}; MLflow run {run.info.run_id}"
    )
    if message:
        print(message)
    return prefixed(metrics, "test")
