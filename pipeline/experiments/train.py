"""``train(config)``: fit the configured backend, save it under models/<name>/, log it to MLflow."""

from __future__ import annotations

import datetime
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from pipeline.config import Config
from pipeline.data.datasets import build_dataset
from pipeline.files import replace_dir
from pipeline.metrics import evaluate_predictions
from pipeline.models.inputs import rows_of
from pipeline.models.registry import build_model


@dataclass
class TrainResult:
    run_id: str
    model_dir: Path
    metrics: dict[str, float]
    seconds: float


def score(model, dataset, config: Config, n_resamples: int = 0) -> tuple[dict[str, float], object]:
    """Metrics of ``model`` on a split (keys without a split prefix) and its probabilities."""
    labels = config.task.labels
    probs = model.predict_proba(rows_of(dataset))
    y_true, y_pred = config.task.label_names(dataset["label"]), config.task.predicted(probs)
    metrics = evaluate_predictions(
        y_true,
        y_pred,
        probs,
        labels,
        config.task.stance_labels,
        groups={"target": list(dataset["target"]), "actor": list(dataset["actor"])},
        n_resamples=n_resamples,
    )
    return metrics, probs


def prefixed(metrics: dict[str, float], prefix: str) -> dict[str, float]:
    return {f"{prefix}/{k}": float(v) for k, v in metrics.items()}


def _train_worker(config: Config) -> TrainResult:
    """A non-main rank of a distributed run: take part in training; log and save nothing."""
    dd = build_dataset(config)
    start = time.time()
    build_model(config).fit(dd["train"], dd.get("dev"))
    return TrainResult("", Path(config.models_dir) / config.name, {}, time.time() - start)


def train(config: Config) -> TrainResult:
    """Train, save and log one model. A failed run is marked FAILED and leaves no model folder."""
    import mlflow

    from pipeline.experiments import tracking

    if not tracking.is_main_process():
        return _train_worker(config)
    tracking.setup(config)
    dd = build_dataset(config)
    model = build_model(config)
    final_dir = Path(config.models_dir) / config.name
    # Staged in a hidden folder under the same name, so the logged artefact keeps the name.
    staging = final_dir.parent / f".staging-{os.getpid()}" / final_dir.name
    start = time.time()
    with mlflow.start_run(run_name=config.name) as run:
        try:
            with tracking.failing_run_marked():
                mlflow.set_tags(tracking.run_tags(config, "train"))
                tracking.log_params(config)
                tracking.log_datasets(dd, config)
                print(
                    f"training {config.model.backend} on {len(dd['train'])} examples "
                    f"(dev {len(dd['dev']) if 'dev' in dd else 0}); MLflow run {run.info.run_id}",
                    flush=True,
                )
                model.fit(dd["train"], dd.get("dev"), on_epoch=tracking.epoch_logger())
                metrics = {"train/seconds": time.time() - start}
                if "dev" in dd:
                    dev_metrics, _ = score(model, dd["dev"], config)
                    metrics |= prefixed(dev_metrics, "dev")
                mlflow.log_metrics(metrics)
                model.info |= {
                    "name": config.name,
                    "mlflow_run_id": run.info.run_id,
                    "tracking_uri": mlflow.get_tracking_uri(),
                    "registered_model": tracking.registered_model_name(config)
                    if config.tracking.register_model
                    else None,
                    "trained_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                    "data_digest": tracking.file_digest(config.data.annotations),
                    "test_split_digest": tracking.split_digest(dd["test"]) if "test" in dd else None,
                    "dev_f_avg": metrics.get("dev/f_avg"),
                }
                model.save(staging)
                example = dd["train"].select(range(min(3, len(dd["train"])))).to_pandas().to_dict("records")
                tracking.log_model(model, staging, config, example)
                replace_dir(staging, final_dir)
        finally:
            shutil.rmtree(staging.parent, ignore_errors=True)
    seconds = time.time() - start
    print(f"saved {final_dir}/ in {seconds:.0f}s; dev F_avg {metrics.get('dev/f_avg', float('nan')):.4f}")
    return TrainResult(run.info.run_id, final_dir, metrics, seconds)
