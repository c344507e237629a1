"""``compare(config)``: an experiment's runs side by side, best first."""

from __future__ import annotations

import pandas as pd

from pipeline.config import Config

COLUMNS = {
    "tags.mlflow.runName": "run",
    "tags.kind": "kind",
    "tags.backend": "backend",
    "tags.base_model": "base_model",
    "metrics.test/f_avg": "test_f_avg",
    "metrics.test/macro_f1": "test_macro_f1",
    "metrics.cv/f_avg/mean": "cv_f_avg",
    "metrics.cv/f_avg/std": "cv_f_avg_std",
    "metrics.cv/macro_f1/mean": "cv_macro_f1",
    "metrics.dev/f_avg": "dev_f_avg",
}


def compare_runs(config: Config, max_runs: int = 200) -> pd.DataFrame:
    """Finished train, evaluate and cv runs of the config's experiment (fold runs left out)."""
    import mlflow

    from pipeline.experiments import tracking

    tracking.setup(config)
    runs = mlflow.search_runs(
        experiment_names=[tracking.experiment_name(config)],
        filter_string="attributes.status = 'FINISHED'",
        max_results=max_runs,
    )
    if runs.empty:
        return pd.DataFrame(columns=[*COLUMNS.values(), "seconds", "run_id"])
    runs = runs[runs.get("tags.kind", pd.Series(index=runs.index, dtype=object)) != "cv-fold"]
    out = pd.DataFrame({new: runs.get(old, None) for old, new in COLUMNS.items()})
    out["seconds"] = (runs["end_time"] - runs["start_time"]).dt.total_seconds().round(0).astype("Int64")
    out["run_id"] = runs["run_id"].str[:8]
    score = out["test_f_avg"].astype(float).fillna(out["cv_f_avg"].astype(float))
    return out.assign(_score=score).sort_values("_score", ascending=False, na_position="last").drop(columns="_score")


def format_runs(df: pd.DataFrame) -> str:
    if df.empty:
        return "no finished runs yet: run `make train` (or `make cv`)"
    shown = df.dropna(axis=1, how="all")
    with pd.option_context("display.max_columns", None, "display.width", 200, "display.float_format", "{:.4f}".format):
        return shown.to_string(index=False)
