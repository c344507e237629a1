"""``evaluate(config, model_uri)``: score a saved model on the test split and log it to MLflow.

Logged under ``test/``: F_avg (mean F1 of the stance labels, SemEval-2016), macro-F1,
accuracy, bootstrap 95% intervals of both, precision/recall/F1/support per label, F_avg and
macro-F1 per target and per actor (where support allows), ECE; artefacts: a confusion
matrix per target and overall, a reliability diagram, the classification report, and a
table of misclassified examples.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
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


def _log_test_artifacts(client, run_id: str, test, probs, config: Config) -> None:
    """Confusion matrices (all targets, each target), reliability diagram, report, misclassified table.

    The figures sit at the run's root (``test_*.png``): MLflow's compare view shows only the root's
    artefacts side by side; the report and the table go under ``test/``."""
    labels = config.task.labels
    y_true, y_pred = config.task.label_names(test["label"]), config.task.predicted(probs)
    client.log_figure(run_id, confusion_matrix_figure(y_true, y_pred, labels, "all targets"), "test_confusion_all.png")
    for target in config.task.target_ids:
        idx = [i for i, t in enumerate(test["target"]) if t == target]
        if idx:
            fig = confusion_matrix_figure([y_true[i] for i in idx], [y_pred[i] for i in idx], labels, target)
            client.log_figure(run_id, fig, f"test_confusion_{target}.png")
    fig = reliability_diagram(probs, np.asarray(test["label"]), title="test")
    client.log_figure(run_id, fig, "test_reliability.png")
    client.log_text(run_id, classification_report_text(y_true, y_pred, labels), "test/classification_report.txt")
    wrong = [i for i in range(len(y_true)) if y_true[i] != y_pred[i]]
    columns = {"id": "id", "actor": "actor", "target": "target", "text": "text"}
    table = {name: [test[col][i] for i in wrong] for name, col in columns.items()}
    table |= {
        "gold": [y_true[i] for i in wrong],
        "predicted": [y_pred[i] for i in wrong],
        "confidence": [float(probs[i].max()) for i in wrong],
    }
    client.log_table(run_id, table, "test/misclassified.json")


def _training_run(model, uri: str) -> str | None:
    """The run that trained the model, when it is in this tracking store."""
    import mlflow

    from pipeline.experiments import tracking

    run_id = model.info.get("mlflow_run_id") or tracking.run_id_of_model_uri(uri)
    if run_id is not None:
        try:
            mlflow.get_run(run_id)
        except Exception:  # the model was trained against another tracking store
            run_id = None
    return run_id


@contextmanager
def _evaluation_run(model, uri: str, config: Config) -> Iterator[str]:
    """The id of the run to log into: the training run, left FINISHED (logged to through the client,
    so an evaluation stopped halfway never marks a good training run failed), else a new run."""
    from pipeline.experiments import tracking

    run_id = _training_run(model, uri)
    if run_id is not None:
        yield run_id
        return
    with tracking.run(f"evaluate-{config.name}", tracking.run_tags(config, "evaluate")) as run:
        yield run.info.run_id


def evaluate(config: Config, model_uri: str | None = None, runtime: str | None = None) -> dict[str, float]:
    import time

    import mlflow
    from mlflow.entities import Metric

    from pipeline.experiments import tracking

    tracking.setup(config)
    uri = model_uri or default_model_uri(config)
    if not is_mlflow_uri(uri) and not Path(uri).exists():
        if model_uri is None:
            raise ModelLoadError(
                f"no trained model at {uri} (the config's models_dir/name): train it with `make train` and the "
                "same CONFIG= and SET=, or name a model with MODEL="
            )
        raise ModelLoadError(f"no model at {uri} (MODEL=): expected a model folder, runs:/<id>/model or models:/<name>")
    model = load_model(uri, runtime=runtime)
    if model.labels != list(config.task.labels):
        raise ModelLoadError(f"model labels {model.labels} differ from the config's {config.task.labels}")
    test = build_dataset(config)["test"]
    metrics, probs = score(model, test, config, n_resamples=config.tracking.bootstrap_resamples)
    digest = tracking.split_digest(test)

    client = mlflow.MlflowClient()
    with _evaluation_run(model, uri, config) as run_id:
        now = int(time.time() * 1000)
        client.log_batch(run_id, metrics=[Metric(k, v, now, 0) for k, v in prefixed(metrics, "test").items()])
        client.set_tag(run_id, "test_split_digest", digest)
        client.set_tag(run_id, "evaluated_model_uri", uri)
        client.set_tag(run_id, "runtime", model.model_cfg.runtime)
        _log_test_artifacts(client, run_id, test, probs, config)
        message = None
        if config.tracking.register_model and model.info.get("registered_model"):
            message = tracking.update_champion(config, run_id, metrics["f_avg"], digest)
    lo, hi = metrics.get("f_avg_ci_low"), metrics.get("f_avg_ci_high")
    ci = f" (95% CI {lo:.3f}-{hi:.3f})" if lo is not None else ""
    print(
        f"test on {len(test)} examples: F_avg {metrics['f_avg']:.4f}{ci}, macro-F1 {metrics['macro_f1']:.4f}, "
        f"ECE {metrics['ece']:.3f} ({model.model_cfg.runtime}); MLflow run {run_id}"
    )
    if message:
        print(message)
    return prefixed(metrics, "test")
