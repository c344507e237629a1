"""Benchmark: simulated active learning on the seed corpus (pipeline/annotate/simulate.py).

Does picking sentences the way ``make suggest`` does beat picking them at random? Starting
from the extra training corpora alone (the synthetic corpus), 20, 40, then 80 seed sentences
are added by the strategy or at random (several seeds), the model retrained from scratch each
time, and the pooled grouped-CV F_avg printed per size, with the sentences each strategy needs
to reach the random curve's final F_avg. Logged to MLflow (one parent run, the size as the
metrics' step, the plot as an artefact); the plot is also written to reports/.

Environment: STANCE_AL_CONFIG (default configs/finetune.yaml), STANCE_AL_SET (space-separated
key=value overrides, e.g. "model.backend=tfidf"), STANCE_AL_STRATEGIES (default "margin"),
STANCE_AL_SEEDS (how many random seeds, default 3: seeds 0 to 2), STANCE_AL_SEED_LIST (the
random seeds themselves instead, e.g. "1 2" to add two seeds' points to a run),
STANCE_AL_SIZES (default "20 40 80"),
STANCE_AL_DIVERSITY (default: make suggest's), STANCE_AL_WARM_EPOCHS (transformer only: instead of
retraining from scratch, fine-tune the model of the extra corpora further on the picked
sentences for that many epochs: ~1 minute a step on 2 CPU cores instead of ~10),
STANCE_AL_CACHE (the folder that keeps every finished step, default
reports/active-learning-cache; "none" keeps nothing). With the cache, a run stopped at any
point resumes where it stopped: the transformer retrained from scratch, about 8 hours on
2 CPU cores, can be run over several sittings. Remove the folder after changing the code.
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml


def _config():
    from pipeline.config import load_config

    overrides = {}
    for pair in os.environ.get("STANCE_AL_SET", "").split():
        key, _, value = pair.partition("=")
        overrides[key] = yaml.safe_load(value)
    return load_config(os.environ.get("STANCE_AL_CONFIG", "configs/finetune.yaml"), overrides)


def _ints(name: str, default: str) -> list[int]:
    """A space-separated list of whole numbers from the environment, or a clear error naming it."""
    value = os.environ.get(name, default)
    try:
        return [int(v) for v in value.split()]
    except ValueError:
        raise SystemExit(f"{name}: expected whole numbers separated by spaces, found {value!r}") from None


def _seeds() -> list[int]:
    """STANCE_AL_SEED_LIST's seeds, or seeds 0 to STANCE_AL_SEEDS - 1."""
    count = _ints("STANCE_AL_SEEDS", "3")
    if len(count) != 1:
        raise SystemExit(f"STANCE_AL_SEEDS: expected one whole number (how many seeds), found {count}")
    return _ints("STANCE_AL_SEED_LIST", "") or list(range(count[0]))


def _plot(result: dict, path: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    sizes = sorted(result["random_mean"])
    mean = [result["random_mean"][s] for s in sizes]
    std = [result["random_std"][s] for s in sizes]
    ax.plot(sizes, mean, "o--", color="grey", label=f"random (mean of {len(result['random'])} seeds)")
    ax.fill_between(
        sizes, [m - s for m, s in zip(mean, std)], [m + s for m, s in zip(mean, std)], color="grey", alpha=0.2
    )
    for name, curve in result["curves"].items():
        ax.plot(sizes, [curve.f_avg[s] for s in sizes], "o-", label=name)
    ax.set(xlabel="seed sentences annotated", ylabel="pooled CV F_avg", title=title, xticks=sizes)
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _log(config, result: dict, plot: Path, params: dict) -> str:
    import mlflow

    from pipeline.experiments import tracking

    tracking.setup(config)
    with tracking.run(f"active-learning-{config.model.backend}", tracking.run_tags(config, "active-learning")) as run:
        mlflow.log_params(params)
        for size, value in result["random_mean"].items():
            mlflow.log_metric("al/random/f_avg_mean", value, step=size)
            mlflow.log_metric("al/random/f_avg_std", result["random_std"][size], step=size)
        for name, curve in result["curves"].items():
            for size, value in curve.f_avg.items():
                mlflow.log_metric(f"al/{name}/f_avg", value, step=size)
            if result["needed"][name] is not None:
                mlflow.log_metric(f"al/{name}/sentences_to_random_final", result["needed"][name])
        mlflow.log_artifact(str(plot))
        return run.info.run_id


def main() -> None:
    from pipeline.annotate.simulate import simulate

    config = _config()
    strategies = os.environ.get("STANCE_AL_STRATEGIES", "margin").split()
    seeds = _seeds()
    sizes = _ints("STANCE_AL_SIZES", "20 40 80")
    diversity = os.environ.get("STANCE_AL_DIVERSITY")
    diversity = None if diversity is None else float(diversity)
    warm = int(os.environ.get("STANCE_AL_WARM_EPOCHS", "0")) or None
    cache = os.environ.get("STANCE_AL_CACHE", "reports/active-learning-cache")
    cache = None if cache.lower() == "none" else cache
    result = simulate(config, strategies, seeds, sizes, diversity, warm, cache)
    points = sorted(result["random_mean"])
    print(f"config {config.name} ({config.model.backend}); pool per fold {result['pool']} sentences")
    print(f"{'sentences':>10} | " + " | ".join(f"{s:>10}" for s in [*result["curves"], "random"]))
    for size in points:
        cells = [f"{c.f_avg[size]:10.4f}" for c in result["curves"].values()]
        cells.append(f"{result['random_mean'][size]:.4f}±{result['random_std'][size]:.3f}")
        print(f"{size:>10} | " + " | ".join(cells))
    final = result["random_mean"][points[-1]]
    if result["random_mean"][0] >= final:
        print(f"note: the model of no annotated sentence ({result['random_mean'][0]:.4f}) beats random's final F_avg")
    for name, n in result["needed"].items():
        reached = f"{n} sentences" if n is not None else "not within the sizes run"
        print(f"{name}: reaches random's final F_avg ({final:.4f} at {points[-1]}) with {reached}")
    name = f"{config.name}-{config.model.backend}" + (f"-warm{warm}" if warm else "")
    plot = _plot(result, Path("reports") / f"active-learning-{name}.png", f"{name}: active learning")
    params = {
        "strategies": " ".join(strategies),
        "seeds": " ".join(map(str, seeds)),
        "sizes": " ".join(map(str, sizes)),
        "warm_epochs": warm or 0,
        "diversity": diversity if diversity is not None else "default",
        "overrides": os.environ.get("STANCE_AL_SET", ""),
    }
    run_id = _log(config, result, plot, params)
    resumed = f", {result['resumed']} steps read back from {cache}" if result["resumed"] else ""
    if result["reused"]:
        resumed += f", {result['reused']} steps on a whole pool shared with a finished step"
    print(f"{result['trainings']} trainings in {result['seconds']:.0f} s{resumed}; plot {plot}; MLflow run {run_id}")
