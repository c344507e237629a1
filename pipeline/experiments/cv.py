"""``cross_validate(config)``: grouped k-fold, one MLflow child run per fold under a parent.

The parent holds, for every metric the folds share, its mean and standard deviation over
folds (``cv/<metric>/mean``, ``cv/<metric>/std``), and F_avg and macro-F1 of all folds'
predictions pooled (``cv/pooled/f_avg``), steadier than the mean when folds are small.

With ``model.runtime`` onnx or onnx-int8, each fold's model is scored on that runtime and on
PyTorch (the same weights): the parent adds ``cv/torch/pooled/f_avg``,
``cv/runtime/f_avg_change`` and ``cv/runtime/same_as_torch`` (the share of identical labels).
"""

from __future__ import annotations

import time

import numpy as np

from pipeline.config import Config
from pipeline.data.datasets import cross_validation_folds
from pipeline.experiments.train import prefixed, score
from pipeline.metrics import f_avg, macro_f1
from pipeline.models.registry import build_model, load_model


def _fit_and_score(config: Config, fold: dict) -> tuple[dict[str, float], np.ndarray, np.ndarray | None]:
    """Train on the fold, score its test split: metrics and probabilities on ``model.runtime``, and
    PyTorch's probabilities when the runtime is another (the same weights, exported and reloaded)."""
    import mlflow

    from pipeline.experiments import tracking
    from pipeline.process import remove_scratch, scratch_dir

    model = build_model(config)
    model.fit(fold["train"], fold.get("dev"), on_epoch=tracking.epoch_logger())
    if config.model.runtime == "torch":
        metrics, probs = score(model, fold["test"], config)
        mlflow.log_metrics(prefixed(metrics, "test"))
        return metrics, probs, None
    torch_metrics, torch_probs = score(model, fold["test"], config)  # a fitted model runs on torch
    workdir = scratch_dir("cv-runtime")
    try:
        exported = load_model(model.save(workdir / "model"))  # saving exports for the runtime
        metrics, probs = score(exported, fold["test"], config)
    finally:
        remove_scratch(workdir)
    same = float((probs.argmax(axis=1) == torch_probs.argmax(axis=1)).mean())
    mlflow.log_metrics(prefixed(metrics, "test") | prefixed(torch_metrics, "test/torch") | {"test/same_as_torch": same})
    return metrics, probs, torch_probs


def cross_validate(config: Config) -> dict[str, float]:
    import mlflow

    from pipeline.experiments import tracking

    tracking.setup(config)
    folds = cross_validation_folds(config)
    labels = config.task.labels
    per_fold: list[dict[str, float]] = []
    pooled_true: list[str] = []
    pooled_pred: list[str] = []
    pooled_target: list[str] = []
    pooled_torch: list[str] = []  # PyTorch's labels, when model.runtime is an ONNX one
    start = time.time()
    with tracking.run(f"cv-{config.name}", tracking.run_tags(config, "cv")) as parent:
        tracking.log_params(config)
        for i, fold in enumerate(folds):
            fold_tags = tracking.run_tags(config, "cv-fold") | {"fold": str(i)}
            with tracking.run(f"cv-{config.name}-fold{i}", fold_tags, nested=True):
                metrics, probs, torch_probs = _fit_and_score(config, fold)
                per_fold.append(metrics)
                pooled_true += config.task.label_names(fold["test"]["label"])
                pooled_pred += config.task.predicted(probs)
                if torch_probs is not None:
                    pooled_torch += config.task.predicted(torch_probs)
                pooled_target += list(fold["test"]["target"])
                print(
                    f"fold {i}: {len(fold['test'])} test examples ({', '.join(sorted(set(fold['test']['doc_id'])))}): "
                    f"F_avg {metrics['f_avg']:.4f}, macro-F1 {metrics['macro_f1']:.4f}",
                    flush=True,
                )
        summary: dict[str, float] = {}
        shared = set.intersection(*(set(m) for m in per_fold))
        for key in sorted(shared):
            values = np.array([m[key] for m in per_fold], dtype=float)
            summary[f"cv/{key}/mean"] = float(values.mean())
            summary[f"cv/{key}/std"] = float(values.std(ddof=1)) if len(values) > 1 else 0.0
        summary["cv/pooled/f_avg"] = f_avg(pooled_true, pooled_pred, config.task.stance_labels)
        summary["cv/pooled/macro_f1"] = macro_f1(pooled_true, pooled_pred, labels)
        for target in config.task.target_ids:  # F_avg per target over all folds' predictions
            idx = [i for i, t in enumerate(pooled_target) if t == target]
            if idx:
                y_t, y_p = [pooled_true[i] for i in idx], [pooled_pred[i] for i in idx]
                summary[f"cv/pooled/f_avg/{target}"] = f_avg(y_t, y_p, config.task.stance_labels)
        if pooled_torch:
            summary |= _runtime_change(config, pooled_true, pooled_pred, pooled_torch)
        summary["cv/folds"] = float(len(folds))
        summary["cv/seconds"] = time.time() - start
        mlflow.log_metrics(summary)
    print(
        f"{len(folds)}-fold CV ({config.model.backend}): F_avg {summary['cv/f_avg/mean']:.4f} ± "
        f"{summary['cv/f_avg/std']:.4f}, macro-F1 {summary['cv/macro_f1/mean']:.4f} ± "
        f"{summary['cv/macro_f1/std']:.4f}; pooled F_avg {summary['cv/pooled/f_avg']:.4f} ("
        + ", ".join(f"{k.rsplit('/', 1)[1]} {v:.4f}" for k, v in summary.items() if k.startswith("cv/pooled/f_avg/"))
        + "); "
        f"MLflow run {parent.info.run_id}"
    )
    if pooled_torch:
        _say_runtime_change(config, summary, len(pooled_torch))
    return summary


def _say_runtime_change(config: Config, summary: dict[str, float], n: int) -> None:
    print(
        f"on {config.model.runtime}; the same fold models on torch: pooled F_avg "
        f"{summary['cv/torch/pooled/f_avg']:.4f} (change {summary['cv/runtime/f_avg_change']:+.4f}), "
        f"labels the same on {summary['cv/runtime/same_as_torch']:.2%} of {n} pairs"
    )


def _runtime_change(config: Config, y_true: list[str], y_runtime: list[str], y_torch: list[str]) -> dict[str, float]:
    """Pooled F_avg on torch, and what the runtime changes: F_avg and the share of identical labels."""
    torch_f = f_avg(y_true, y_torch, config.task.stance_labels)
    return {
        "cv/torch/pooled/f_avg": torch_f,
        "cv/runtime/f_avg_change": f_avg(y_true, y_runtime, config.task.stance_labels) - torch_f,
        "cv/runtime/same_as_torch": float(np.mean([a == b for a, b in zip(y_runtime, y_torch)])),
    }
