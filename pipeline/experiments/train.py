"""``train(config)``: fit the configured backend, save it under models/<name>/, log it to MLflow."""

from __future__ import annotations

import datetime
import time
from dataclasses import dataclass
from pathlib import Path

from pipeline import process
from pipeline.config import Config
from pipeline.data.datasets import build_dataset
from pipeline.files import refuse_existing, replace_dir
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


def train(config: Config, overwrite: bool = False) -> TrainResult:
    """Train, save and log one model. A failed or stopped run is marked FAILED (KILLED) and
    leaves no model folder; an existing one is replaced only with ``overwrite``, at the end."""
    import mlflow

    from pipeline.experiments import tracking

    if not tracking.is_main_process():
        return _train_worker(config)
    final_dir = Path(config.models_dir) / config.name
    refuse_existing(final_dir, overwrite, "model folder", folder=True)
    tracking.setup(config)
    dd = build_dataset(config)
    model = build_model(config)
    # Staged under the same name in a hidden folder beside it (the logged artefact keeps the
    # name; the rename stays on one file system); a killed run's staging goes at the next train.
    staging_root = final_dir.parent / ".staging"
    process.clean_scratch(staging_root)
    staging = process.scratch_dir("staging", root=staging_root) / final_dir.name
    start = time.time()
    try:
        with tracking.run(config.name, tracking.run_tags(config, "train")) as run:
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
            model.info |= _model_info(config, dd, run.info.run_id, metrics)
            model.save(staging)
            example = dd["train"].select(range(min(3, len(dd["train"])))).to_pandas().to_dict("records")
            tracking.log_model(model, staging, config, example)
            replace_dir(staging, final_dir)
    finally:
        process.remove_scratch(staging.parent)
    seconds = time.time() - start
    print(f"saved {final_dir}/ in {seconds:.0f}s; dev F_avg {metrics.get('dev/f_avg', float('nan')):.4f}")
    return TrainResult(run.info.run_id, final_dir, metrics, seconds)


def _model_info(config: Config, dd, run_id: str, metrics: dict[str, float]) -> dict:
    import mlflow

    from pipeline.experiments import tracking

    return {
        "name": config.name,
        "mlflow_run_id": run_id,
        "tracking_uri": mlflow.get_tracking_uri(),
        "registered_model": tracking.registered_model_name(config) if config.tracking.register_model else None,
        "trained_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "data_digest": tracking.file_digest(config.data.annotations),
        "test_split_digest": tracking.split_digest(dd["test"]) if "test" in dd else None,
        "dev_f_avg": metrics.get("dev/f_avg"),
    }
