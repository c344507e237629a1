"""``sweep(config_path)``: hyperparameter search over the fine-tuning recipe with Optuna.

Every trial is an MLflow child run under one parent run; trials train on the train split
and are scored on dev (best dev F_avg over the trial's epochs, the checkpoint early
stopping keeps), never on test. A trial reports dev F_avg after each epoch, so the pruner
can stop one that trails the others. At the end the parent holds:

* metrics ``sweep/trial_dev_f_avg`` and ``sweep/best_dev_f_avg`` with step = trial number
  (the objective by trial, as a chart in the MLflow UI), and the best trial's figures;
* artefacts ``sweep/optimization_history.png``, ``sweep/param_importances.png``,
  ``sweep/parallel_coordinate.png``, ``sweep/trials.csv`` and the best config;
* the best config, written as a YAML file that extends the swept one (``sweep.output``).

The search space is configuration (``sweep.space``): dotted config keys, as for ``--set``,
mapped to a range or a list of choices.

Optuna's own MLflowCallback logs one flat run per finished trial; it cannot nest trials
under a parent, log per-epoch curves or record pruned trials with their curves, hence the
few lines of logging here.
"""

from __future__ import annotations

import datetime
import logging
import os
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from pipeline.config import Config, ConfigError, SweepParam, load_config, nest_dotted, with_overrides
from pipeline.files import refuse_existing, write_atomic

PRUNED = "PRUNED"


class SweepError(ValueError):
    """The sweep cannot run as configured (no dev split, empty search space, ...)."""


@dataclass
class SweepResult:
    run_id: str
    best_value: float
    best_params: dict[str, Any]
    best_config: Path
    n_complete: int
    n_pruned: int
    seconds: float


def suggest(trial, key: str, spec: SweepParam) -> Any:
    if spec.type == "categorical":
        # Optuna stores categorical choices as given; None, str, int, float and bool are allowed.
        return trial.suggest_categorical(key, spec.choices)
    if spec.type == "int":
        return trial.suggest_int(key, int(spec.low), int(spec.high), step=int(spec.step or 1), log=spec.log)
    return trial.suggest_float(key, spec.low, spec.high, step=spec.step, log=spec.log)


def check_space(config_path: Path, config: Config) -> None:
    """Each key of the space must be a config key that accepts the space's values."""
    space = config.sweep.space
    if not space:
        raise SweepError(f"{config_path}: sweep.space is empty; name at least one config key to search over")
    for key, spec in space.items():
        values = spec.choices if spec.type == "categorical" else [spec.low, spec.high]
        for value in values:
            if spec.type == "int":
                value = int(value)
            try:
                with_overrides(config, {key: value})
            except ConfigError as exc:
                raise SweepError(
                    f"{config_path}: sweep.space.{key}: the value {value!r} is not accepted: {exc}"
                ) from None


def subsample(train, fraction: float, seed: int):
    """A stratified (target x label), seeded share of the training split; strata too small to
    split (one example) are pooled per label, as scikit-learn needs two members in each."""
    if fraction >= 1.0:
        return train
    from collections import Counter

    from sklearn.model_selection import train_test_split

    strata = [f"{t}|{y}" for t, y in zip(train["target"], train["label"])]
    sizes = Counter(strata)
    strata = [s if sizes[s] >= 2 else f"*|{y}" for s, y in zip(strata, train["label"])]
    if min(Counter(strata).values()) < 2:  # a pooled stratum of one: stratify on the label alone
        strata = [str(y) for y in train["label"]] if min(Counter(train["label"]).values()) >= 2 else None
    keep, _ = train_test_split(np.arange(len(train)), train_size=fraction, stratify=strata, random_state=seed)
    return train.select(sorted(keep.tolist()))


def pruning_hook(trial):
    """An epoch hook reporting dev F_avg to Optuna; it stops training (raises) when the pruner says so."""
    import optuna

    def prune(epoch: int, figures: dict[str, float]) -> None:
        if "dev_f_avg" not in figures:
            return
        trial.report(figures["dev_f_avg"], step=epoch)
        if trial.should_prune():
            raise optuna.TrialPruned(f"pruned after epoch {epoch}: dev F_avg {figures['dev_f_avg']:.4f}")

    return prune


def make_pruner(config: Config):
    import optuna

    s = config.sweep
    if s.pruner == "none":
        return optuna.pruners.NopPruner()
    if s.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1 + s.warmup_epochs, max_resource=config.training.epochs)
    # Steps are epochs, reported from 1; Optuna's earliest pruning step is n_warmup_steps.
    return optuna.pruners.MedianPruner(n_startup_trials=s.startup_trials, n_warmup_steps=s.warmup_epochs + 1)


def default_output(config_path: Path) -> Path:
    return config_path.with_name(f"{config_path.stem}-best.yaml")


def write_best_config(
    config_path: Path, out: Path, overrides: dict[str, Any], config: Config, best: dict[str, Any], note: str
) -> Path:
    """A config extending the swept one with the best trial's settings; written to a temp file, then renamed."""
    out.parent.mkdir(parents=True, exist_ok=True)
    body = {"extends": os.path.relpath(config_path.resolve(), out.parent.resolve()), "name": f"{config.name}-best"}
    body |= nest_dotted({k: v for k, v in {**overrides, **best}.items() if k not in ("name", "extends")})
    text = "".join(f"# {line}\n" for line in note.splitlines()) + yaml.safe_dump(body, sort_keys=False)
    return write_atomic(out, text, check=load_config)  # what is written must load


def save_plots(study, folder: Path) -> list[str]:
    """Optuna's matplotlib plots of the search; a plot that cannot be drawn yet is skipped with a note."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import optuna
    from optuna.visualization import matplotlib as ovm

    notes = []
    plots = {
        "optimization_history": ovm.plot_optimization_history,
        "param_importances": ovm.plot_param_importances,
        "parallel_coordinate": ovm.plot_parallel_coordinate,
        "intermediate_values": ovm.plot_intermediate_values,
    }
    for name, plot in plots.items():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                warnings.simplefilter("ignore", UserWarning)  # "too few trials: importances equal", axis limits
                ax = plot(study)
            fig = (ax.flat[0] if hasattr(ax, "flat") else ax).figure
            fig.set_size_inches(9, 5.5)
            fig.tight_layout()
            fig.savefig(folder / f"{name}.png", dpi=110)
            plt.close(fig)
        except (ValueError, RuntimeError, ZeroDivisionError) as exc:  # e.g. importances need 2+ finished trials
            notes.append(f"{name}: not drawn ({exc})")
    return notes


def _objective(config: Config, train, dev):
    """The Optuna objective: one trial is one nested MLflow run, scored on dev; pruned trials stop early."""
    import mlflow
    import optuna

    from pipeline.experiments import tracking
    from pipeline.experiments.train import prefixed, score
    from pipeline.models.registry import build_model

    def objective(trial) -> float:
        params = {key: suggest(trial, key, spec) for key, spec in config.sweep.space.items()}
        cfg = with_overrides(config, params)
        shown = ", ".join(f"{k.split('.')[-1]}={v}" for k, v in params.items())
        print(f"trial {trial.number}: {shown}", flush=True)
        trial_tags = tracking.run_tags(cfg, "sweep-trial") | {"trial": str(trial.number)}
        with tracking.run(f"sweep-{config.name}-trial{trial.number:03d}", trial_tags, nested=True):
            tracking.log_params(cfg)
            t0 = time.time()
            model = build_model(cfg)
            log_epoch, prune = tracking.epoch_logger(), pruning_hook(trial)

            def on_epoch(epoch: int, figures: dict[str, float]) -> None:
                log_epoch(epoch, figures)
                prune(epoch, figures)

            try:
                model.fit(train, dev, on_epoch=on_epoch)
            except optuna.TrialPruned as exc:
                # A pruned trial is a finished run with its curve so far, not a failed one:
                # the exception leaves the run's context only after the run is closed.
                mlflow.set_tags({"trial_state": PRUNED})
                mlflow.log_metric("trial/seconds", time.time() - t0)
                print(f"trial {trial.number}: {exc} ({time.time() - t0:.0f}s)", flush=True)
                pruned: optuna.TrialPruned | None = exc
            else:
                pruned = None
                metrics, _ = score(model, dev, cfg)
                mlflow.log_metrics(prefixed(metrics, "dev") | {"trial/seconds": time.time() - t0})
                mlflow.set_tags({"trial_state": "COMPLETE"})
                print(f"trial {trial.number}: dev F_avg {metrics['f_avg']:.4f} ({time.time() - t0:.0f}s)", flush=True)
        if pruned is not None:
            raise pruned
        return float(metrics["f_avg"])

    return objective


def _on_trial_end(study, trial) -> None:
    import mlflow

    finished = [t for t in study.trials if t.value is not None]
    if trial.value is not None:
        mlflow.log_metric("sweep/trial_dev_f_avg", trial.value, step=trial.number)
    if finished:
        mlflow.log_metric("sweep/best_dev_f_avg", max(t.value for t in finished), step=trial.number)


def _finish(study, config: Config, config_path: Path, out: Path, overrides: dict, run_id: str, start: float):
    """Write the best config, log the summary, the plots and the trials table; the SweepResult."""
    import mlflow
    import optuna

    from pipeline.experiments import tracking

    states = [t.state for t in study.trials]
    n_complete = sum(st == optuna.trial.TrialState.COMPLETE for st in states)
    n_pruned = sum(st == optuna.trial.TrialState.PRUNED for st in states)
    if n_complete == 0:
        raise SweepError(f"no trial finished ({n_pruned} pruned of {len(states)}); nothing to choose from")
    seconds = time.time() - start
    best = study.best_trial
    note = (
        f"Written by `make sweep CONFIG={config_path}` on {datetime.date.today().isoformat()}:\n"
        f"the best of {len(states)} trials ({n_complete} complete, {n_pruned} pruned): trial {best.number},\n"
        f"dev F_avg {best.value:.4f}. MLflow run {run_id} "
        f"(experiment {tracking.experiment_name(config)})."
    )
    write_best_config(config_path, out, overrides, config, best.params, note)
    mlflow.log_metrics(
        {
            "sweep/best_value": float(best.value),
            "sweep/best_trial": float(best.number),
            "sweep/trials_complete": float(n_complete),
            "sweep/trials_pruned": float(n_pruned),
            "sweep/seconds": seconds,
        }
    )
    mlflow.log_params({f"best.{k}": str(v) for k, v in best.params.items()})
    mlflow.log_artifact(str(out), "sweep")
    with tempfile.TemporaryDirectory() as tmp:
        notes = save_plots(study, Path(tmp))
        study.trials_dataframe().to_csv(Path(tmp) / "trials.csv", index=False)
        if notes:
            (Path(tmp) / "plots-skipped.txt").write_text("\n".join(notes) + "\n")
        mlflow.log_artifacts(tmp, "sweep")
    return SweepResult(run_id, float(best.value), dict(best.params), out, n_complete, n_pruned, seconds)


def _interrupt_without_traceback(record: logging.LogRecord) -> bool:
    """Optuna logs a trial stopped by Ctrl-C or a stop signal with a traceback: keep its one line."""
    if record.exc_info and isinstance(record.exc_info[1], KeyboardInterrupt):
        record.exc_info, record.exc_text = None, None
    return True


def _study(config: Config):
    """An Optuna study maximising dev F_avg: TPE sampler seeded by the config, its pruner."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.getLogger("optuna.study._optimize").addFilter(_interrupt_without_traceback)
    return optuna.create_study(
        study_name=f"{config.name}-sweep",
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=config.sweep.seed, n_startup_trials=config.sweep.startup_random),
        pruner=make_pruner(config),
    )


def run_sweep(
    config_path: str | Path,
    overrides: dict[str, Any] | None = None,
    n_trials: int | None = None,
    output: str | Path | None = None,
    overwrite: bool = False,
) -> SweepResult:
    """Search the recipe on dev: a parent MLflow run, one child run per trial; writes the best config
    (an existing file only with ``overwrite``, checked before the first trial)."""
    import mlflow

    from pipeline.data.datasets import build_dataset
    from pipeline.experiments import tracking

    config_path = Path(config_path)
    overrides = dict(overrides or {})
    config = load_config(config_path, overrides)
    s = config.sweep
    check_space(config_path, config)
    n_trials = n_trials or s.n_trials
    out = refuse_existing(output or s.output or default_output(config_path), overwrite, "best config file")
    tracking.setup(config)
    dd = build_dataset(config)
    if "dev" not in dd or not len(dd["dev"]):
        raise SweepError(
            f"{config_path}: the sweep scores trials on dev, and this corpus has no dev split "
            "(give records a 'dev' split, or set data.dev_size > 0)"
        )
    train, dev = subsample(dd["train"], s.train_fraction, s.seed), dd["dev"]
    study = _study(config)
    start = time.time()
    print(
        f"sweep of {config.name}: {n_trials} trial(s) over {list(s.space)}; train {len(train)} "
        f"of {len(dd['train'])} examples, dev {len(dev)}; pruner {s.pruner}",
        flush=True,
    )
    with tracking.run(f"sweep-{config.name}", tracking.run_tags(config, "sweep")) as parent:
        tracking.log_params(config)
        mlflow.log_params(
            {f"sweep.{k}": str(v) for k, v in s.model_dump(exclude={"space"}).items()}
            | {"sweep.n_trials_run": n_trials, "sweep.train_examples": len(train)}
        )
        mlflow.log_dict(s.model_dump(mode="json"), "sweep/sweep.yaml")
        tracking.log_datasets({"train": train, "dev": dev}, config)
        timeout = s.timeout_minutes * 60 if s.timeout_minutes else None
        study.optimize(
            _objective(config, train, dev),
            n_trials=n_trials,
            timeout=timeout,
            callbacks=[_on_trial_end],
            gc_after_trial=True,
        )
        result = _finish(study, config, config_path, out, overrides, parent.info.run_id, start)
    print(
        f"sweep done in {result.seconds / 60:.1f} min: {result.n_complete} complete, {result.n_pruned} pruned; "
        f"best trial {study.best_trial.number}, dev F_avg {result.best_value:.4f}: {result.best_params}\n"
        f"best config: {out}",
        flush=True,
    )
    return result
