"""`make sweep`: Optuna trials as MLflow child runs, scored on dev, pruning, the best config written."""

import mlflow
import optuna
import pytest
import yaml

from pipeline.config import load_config
from pipeline.experiments.sweep import SweepError, pruning_hook, run_sweep, subsample
from tests.conftest import TWEET_TASK, tweet_records, write_jsonl, write_yaml

pytestmark = pytest.mark.slow

SPACE = {
    "training.learning_rate": {"type": "float", "low": 1.0e-4, "high": 1.0e-2, "log": True},
    "model.pooling": {"type": "categorical", "choices": ["cls", "mean"]},
    "training.class_weight": {"type": "categorical", "choices": ["none", "balanced"]},
}


def sweep_config(tmp_path, tiny_model_dir, **sweep):
    corpus = write_jsonl(tmp_path / "tweets.jsonl", tweet_records({"train": 24, "dev": 9, "test": 6}))
    cfg = {
        "name": "tweets",
        "task": TWEET_TASK,
        "data": {"corpus": "tweets", "annotations": str(corpus), "group_by": "id", "complete_labels": False},
        "model": {"base_model": str(tiny_model_dir), "max_length": 32},
        "training": {"epochs": 3, "batch_size": 8, "early_stopping_patience": 0, "threads": 1},
        "tracking": {"register_model": False},
        "models_dir": str(tmp_path / "models"),
        "sweep": {"n_trials": 3, "seed": 3, "startup_random": 2, "space": SPACE} | sweep,
    }
    (tmp_path / "sweep").mkdir(exist_ok=True)
    return write_yaml(tmp_path / "sweep" / "tweets.yaml", cfg)


def test_sweep_logs_trials_under_a_parent_and_writes_the_best_config(mlflow_store, tmp_path, tiny_model_dir):
    path = sweep_config(tmp_path, tiny_model_dir)
    result = run_sweep(path, n_trials=3)
    client = mlflow.MlflowClient()
    parent = client.get_run(result.run_id)
    assert parent.data.tags["kind"] == "sweep"
    children = client.search_runs(
        [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{result.run_id}'", order_by=["tags.trial ASC"]
    )
    assert len(children) == 3 == result.n_complete + result.n_pruned
    for child in children:
        assert child.data.tags["kind"] == "sweep-trial"
        # The trial's own settings, drawn from the space (the default 8.8e-5 lies outside it), not the base config's.
        assert 1.0e-4 <= float(child.data.params["training.learning_rate"]) <= 1.0e-2
        assert "dev/f_avg" in child.data.metrics or child.data.tags["trial_state"] == "PRUNED"
        assert not [k for k in child.data.metrics if k.startswith("test/")]  # trials never see test
        assert [m.step for m in client.get_metric_history(child.info.run_id, "curve/dev_f_avg")] == [1, 2, 3]
    values = [c.data.metrics["dev/f_avg"] for c in children]
    assert result.best_value == pytest.approx(max(values))
    history = client.get_metric_history(result.run_id, "sweep/trial_dev_f_avg")
    assert sorted(m.step for m in history) == [0, 1, 2]
    assert parent.data.metrics["sweep/best_value"] == pytest.approx(max(values))

    artifacts = {a.path for a in client.list_artifacts(result.run_id, "sweep")}
    assert {
        "sweep/optimization_history.png",
        "sweep/param_importances.png",
        "sweep/trials.csv",
        "sweep/tweets-best.yaml",
    } <= artifacts

    # The best config extends the swept one with the best trial's settings, and loads.
    assert result.best_config == path.with_name("tweets-best.yaml")
    written = yaml.safe_load(result.best_config.read_text())
    assert written["extends"] == "tweets.yaml" and written["name"] == "tweets-best"
    best = load_config(result.best_config)
    assert best.name == "tweets-best"
    assert best.training.learning_rate == pytest.approx(result.best_params["training.learning_rate"])
    assert best.model.pooling == result.best_params["model.pooling"]
    # The best trial's child run (found by its trial tag: dev F_avg may tie) ran with the written settings.
    best_trial = str(int(parent.data.metrics["sweep/best_trial"]))
    (best_child,) = [c for c in children if c.data.tags["trial"] == best_trial]
    assert best_child.data.metrics["dev/f_avg"] == pytest.approx(result.best_value)
    assert best_child.data.params["model.pooling"] == best.model.pooling
    assert float(best_child.data.params["training.learning_rate"]) == result.best_params["training.learning_rate"]
    assert len({c.data.params["training.learning_rate"] for c in children}) == 3  # each trial drew its own
    assert "dev F_avg" in result.best_config.read_text().splitlines()[2]


def test_same_sweep_seed_proposes_the_same_trials(mlflow_store, tmp_path, tiny_model_dir):
    path = sweep_config(tmp_path, tiny_model_dir)
    a = run_sweep(path, n_trials=2, output=tmp_path / "a.yaml")
    b = run_sweep(path, n_trials=2, output=tmp_path / "b.yaml")
    assert a.best_params == b.best_params and a.best_value == b.best_value


class PruneAfterFirst(optuna.pruners.BasePruner):
    """Lets trial 0 finish and prunes every later trial at its first report."""

    def prune(self, study, trial):
        return trial.number > 0


def test_pruned_trials_stop_early_and_are_marked(mlflow_store, tmp_path, tiny_model_dir, monkeypatch):
    monkeypatch.setattr("pipeline.experiments.sweep.make_pruner", lambda config: PruneAfterFirst())
    result = run_sweep(sweep_config(tmp_path, tiny_model_dir), n_trials=3)
    assert (result.n_complete, result.n_pruned) == (1, 2)
    client = mlflow.MlflowClient()
    children = client.search_runs(
        [client.get_run(result.run_id).info.experiment_id], f"tags.mlflow.parentRunId = '{result.run_id}'"
    )
    pruned = [c for c in children if c.data.tags["trial_state"] == "PRUNED"]
    assert len(pruned) == 2
    for child in pruned:  # stopped after the first of three epochs
        assert [m.step for m in client.get_metric_history(child.info.run_id, "curve/dev_f_avg")] == [1]
        assert child.info.status == "FINISHED"
    assert client.get_run(result.run_id).data.metrics["sweep/trials_pruned"] == 2


@pytest.mark.parametrize("warmup, first_prunable", [(0, 1), (1, 2), (2, 3)])
def test_median_pruner_spares_the_warmup_epochs(warmup, first_prunable):
    from pipeline.experiments.sweep import make_pruner

    config = load_config("configs/finetune.yaml", {"sweep.warmup_epochs": warmup, "sweep.startup_trials": 2})
    study = optuna.create_study(direction="maximize", pruner=make_pruner(config))
    for _ in range(2):  # two finished trials at 0.6 every epoch
        trial = study.ask()
        for epoch in (1, 2, 3):
            trial.report(0.6, epoch)
        study.tell(trial, 0.6)
    trial = study.ask()
    pruned_at = None
    for epoch in (1, 2, 3):  # a trailing trial
        trial.report(0.1, epoch)
        if trial.should_prune():
            pruned_at = epoch
            break
    assert pruned_at == first_prunable


def test_pruning_hook_raises_when_the_pruner_says_so():
    class Trial:
        reported = []

        def report(self, value, step):
            self.reported.append((step, value))

        def should_prune(self):
            return len(self.reported) >= 2

    trial = Trial()
    prune = pruning_hook(trial)
    prune(1, {"train_loss": 0.9})  # no dev figure: nothing to report
    prune(1, {"dev_f_avg": 0.5})
    with pytest.raises(optuna.TrialPruned, match="after epoch 2"):
        prune(2, {"dev_f_avg": 0.4})
    assert trial.reported == [(1, 0.5), (2, 0.4)]


def test_a_sweep_needs_a_dev_split_and_a_valid_space(mlflow_store, tmp_path, tiny_model_dir):
    path = sweep_config(tmp_path, tiny_model_dir)
    with pytest.raises(SweepError, match=r"sweep.space.training.learnig_rate"):
        run_sweep(path, {"sweep.space": {"training.learnig_rate": {"type": "float", "low": 0.1, "high": 0.2}}})
    with pytest.raises(SweepError, match="sweep.space.model.pooling.*'max'"):
        run_sweep(path, {"sweep.space": {"model.pooling": {"type": "categorical", "choices": ["cls", "max"]}}})
    records = [r | {"split": "train" if r["split"] == "dev" else r["split"]} for r in tweet_records()]
    write_jsonl(tmp_path / "tweets.jsonl", records)
    with pytest.raises(SweepError, match="no dev split"):
        run_sweep(path, {"data.dev_size": 0})
    assert not (tmp_path / "sweep" / "tweets-best.yaml").exists()


@pytest.mark.parametrize("rare", [1, 0])
def test_subsample_pools_strata_too_small_to_split(rare):
    from datasets import Dataset

    targets = ["a"] * 20 + ["b"] * rare
    labels = [i % 3 for i in range(20)] + [0] * rare
    train = Dataset.from_dict({"target": targets, "label": labels, "i": list(range(len(targets)))})
    half = subsample(train, 0.5, seed=1)
    assert len(half) == len(train) // 2 and set(half["i"]) <= set(range(len(train)))
    assert subsample(train, 0.5, seed=1)["i"] == half["i"]  # seeded
