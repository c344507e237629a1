"""End to end against a throw-away MLflow store: train, evaluate, registry, cv, compare, failures."""

import json
import subprocess
import sys
import time

import mlflow
import pandas as pd
import pytest

from pipeline.config import load_config
from pipeline.experiments.compare import compare_runs, format_runs
from pipeline.experiments.cv import cross_validate
from pipeline.experiments.evaluate import evaluate
from pipeline.experiments.train import train
from pipeline.models.encoders import ModelLoadError
from tests.conftest import tiny_overrides

pytestmark = pytest.mark.slow


def cfg(path, tmp_path, tiny_model_dir, **extra):
    return load_config(path, tiny_overrides(tmp_path, tiny_model_dir, **extra))


def test_train_then_evaluate_logs_everything(mlflow_store, tmp_path, tiny_model_dir):
    config = cfg("configs/finetune.yaml", tmp_path, tiny_model_dir)
    result = train(config)
    folder = tmp_path / "models" / "finetune-minilm"
    assert result.model_dir == folder
    assert {"stance.json", "config.json", "model.safetensors", "tokenizer.json"} <= {p.name for p in folder.iterdir()}
    assert not [p for p in (tmp_path / "models").iterdir() if p.name.startswith(".")]

    client = mlflow.MlflowClient()
    run = client.get_run(result.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.tags["backend"] == "transformer"
    assert run.data.tags["base_model"] == str(tiny_model_dir)
    assert run.data.tags["git_commit"] and len(run.data.tags["data_digest"]) == 12
    assert run.data.params["training.epochs"] == "2" and run.data.params["model.backend"] == "transformer"
    assert "dev/f_avg" in run.data.metrics and "train/seconds" in run.data.metrics
    curve = client.get_metric_history(result.run_id, "curve/dev_f_avg")
    assert [m.step for m in curve] == [1, 2]
    assert {i.dataset.name for i in run.inputs.dataset_inputs} == {
        "ukraine-seeds-train",
        "ukraine-seeds-dev",
        "ukraine-seeds-test",
    }
    exp = client.get_experiment(run.info.experiment_id)
    assert exp.name == "ukraine-seeds"

    metrics = evaluate(config)
    for key in (
        "test/f_avg",
        "test/macro_f1",
        "test/f_avg_ci_low",
        "test/f_avg_ci_high",
        "test/macro_f1_ci_low",
        "test/ece",
        "test/f1/favor",
        "test/precision/against",
        "test/recall/none",
        "test/f_avg/target/concessions",
    ):
        assert key in metrics, key
    assert metrics["test/f_avg_ci_low"] <= metrics["test/f_avg"] <= metrics["test/f_avg_ci_high"]
    run = client.get_run(result.run_id)  # evaluation is logged into the training run
    assert run.data.metrics["test/f_avg"] == pytest.approx(metrics["test/f_avg"])
    artifacts = {a.path for folder in (None, "test") for a in client.list_artifacts(result.run_id, folder)}
    assert {
        "test_confusion_all.png",
        "test_confusion_concessions.png",
        "test_reliability.png",
        "test/classification_report.txt",
        "test/misclassified.json",
    } <= artifacts

    # Registered; the first evaluation makes it the champion; the pyfunc answers label + probabilities.
    version = client.get_model_version_by_alias("stance-ukraine-seeds", "champion")
    assert version.run_id == result.run_id
    pyfunc = mlflow.pyfunc.load_model("models:/stance-ukraine-seeds@champion")
    df = pd.DataFrame(
        [
            {"text": "Macron urged Ukraine to cede land.", "actor": "macron", "target": "concessions"},
            {"text": "Zelensky said no.", "actor": "zelensky", "target": "negotiations"},
        ]
    )
    out = pyfunc.predict(df)
    assert list(out.columns) == ["label", "prob_favor", "prob_against", "prob_none"]
    assert out["label"].isin(["favor", "against", "none"]).all()
    assert (out[["prob_favor", "prob_against", "prob_none"]].sum(axis=1) - 1).abs().max() < 1e-5
    assert pyfunc.metadata.signature.inputs.input_names() == ["text", "actor", "target"]

    # The same model by runs:/ and models:/ URIs gives the same test metrics.
    again = evaluate(config, f"runs:/{result.run_id}/model")
    assert again["test/f_avg"] == pytest.approx(metrics["test/f_avg"])


def test_champion_moves_only_on_a_better_f_avg_on_the_same_split(mlflow_store, tmp_path, tiny_model_dir):
    base = cfg("configs/tfidf.yaml", tmp_path, tiny_model_dir)
    first = train(base)
    first_metrics = evaluate(base)
    client = mlflow.MlflowClient()
    champion = client.get_model_version_by_alias("stance-ukraine-seeds", "champion")
    assert champion.run_id == first.run_id
    # The champion's score is the test F_avg logged to the run it points to (tagged to 6 decimals).
    champion_score = float(champion.tags["test_f_avg"])
    logged = client.get_run(champion.run_id).data.metrics["test/f_avg"]
    assert champion_score == pytest.approx(logged, abs=1e-6) == first_metrics["test/f_avg"]

    worse = cfg("configs/majority.yaml", tmp_path, tiny_model_dir)  # F_avg 0: never better
    second = train(worse)
    second_metrics = evaluate(worse)
    assert second_metrics["test/f_avg"] == 0.0 < champion_score  # strictly worse, so the alias must stay
    assert client.get_model_version_by_alias("stance-ukraine-seeds", "champion").run_id == first.run_id

    # Scored on another test split (sentences, not documents, held out): never compared, never moved.
    other_split = cfg("configs/tfidf.yaml", tmp_path, tiny_model_dir, **{"data.group_by": "id", "name": "tfidf-other"})
    third = train(other_split)
    evaluate(other_split)
    versions = {v.run_id: v for v in client.search_model_versions("name='stance-ukraine-seeds'")}
    assert versions[third.run_id].tags["test_split_digest"] != versions[first.run_id].tags["test_split_digest"]
    assert versions[second.run_id].tags["test_split_digest"] == versions[first.run_id].tags["test_split_digest"]
    assert client.get_model_version_by_alias("stance-ukraine-seeds", "champion").run_id == first.run_id


def test_evaluate_before_training_says_to_train(mlflow_store, tmp_path, tiny_model_dir):
    config = cfg("configs/finetune.yaml", tmp_path, tiny_model_dir)
    with pytest.raises(
        ModelLoadError,
        match=r"no trained model at .*finetune-minilm \(the config.s models_dir/name\): train it with `make train`",
    ):
        evaluate(config)
    with pytest.raises(ModelLoadError, match="is not a saved stance model"):
        evaluate(config, str(tmp_path))
    with pytest.raises(ModelLoadError, match="cannot resolve model URI 'models:/nope@champion'"):
        evaluate(config, "models:/nope@champion")


def test_failed_training_is_marked_failed_and_leaves_no_model(mlflow_store, tmp_path, tiny_model_dir, monkeypatch):
    from pipeline.models import baselines as backends

    def boom(self, *args, **kwargs):
        raise RuntimeError("out of memory (simulated)")

    monkeypatch.setattr(backends.TfidfModel, "fit", boom)
    config = cfg("configs/tfidf.yaml", tmp_path, tiny_model_dir)
    with pytest.raises(RuntimeError, match="simulated"):
        train(config)
    runs = mlflow.search_runs(experiment_names=["ukraine-seeds"])
    assert list(runs["status"]) == ["FAILED"]
    assert runs["tags.error"][0] == "RuntimeError: out of memory (simulated)"
    models = tmp_path / "models"
    assert not models.exists() or not any(models.iterdir())


def test_cross_validation_parent_and_children(mlflow_store, tmp_path, tiny_model_dir):
    config = cfg("configs/tfidf.yaml", tmp_path, tiny_model_dir)
    summary = cross_validate(config)
    assert summary["cv/folds"] == 5
    assert 0 <= summary["cv/f_avg/mean"] <= 1
    runs = mlflow.search_runs(experiment_names=["ukraine-seeds"])
    parent = runs[runs["tags.kind"] == "cv"]
    children = runs[runs["tags.kind"] == "cv-fold"]
    assert len(parent) == 1 and len(children) == 5
    assert set(children["tags.mlflow.parentRunId"]) == {parent["run_id"].iloc[0]}
    folds = children["metrics.test/f_avg"].astype(float)
    assert summary["cv/f_avg/mean"] == pytest.approx(folds.mean())
    assert summary["cv/f_avg/std"] == pytest.approx(folds.std(ddof=1))
    per_target = {k.rsplit("/", 1)[1] for k in summary if k.startswith("cv/pooled/f_avg/")}
    assert per_target == set(config.task.target_ids)


def test_cross_validation_pools_f_avg_per_target(mlflow_store, tmp_path, tiny_model_dir):
    config = cfg("configs/majority.yaml", tmp_path, tiny_model_dir)
    summary = cross_validate(config)  # the majority label is none in every fold: no stance is ever right
    assert {k: v for k, v in summary.items() if k.startswith("cv/pooled/f_avg")} == {
        "cv/pooled/f_avg": 0.0,
        **{f"cv/pooled/f_avg/{t}": 0.0 for t in config.task.target_ids},
    }


def test_cross_validation_on_an_onnx_runtime_measures_the_change_against_torch(mlflow_store, tmp_path, tiny_model_dir):
    config = cfg("configs/finetune.yaml", tmp_path, tiny_model_dir, **{"model.runtime": "onnx", "training.epochs": 1})
    summary = cross_validate(config)
    # fp32 ONNX gives PyTorch's labels, so the pooled F_avg cannot change; int8 may (make cv measures it).
    assert summary["cv/runtime/same_as_torch"] == 1.0
    assert summary["cv/runtime/f_avg_change"] == 0.0
    assert summary["cv/torch/pooled/f_avg"] == pytest.approx(summary["cv/pooled/f_avg"])
    children = mlflow.search_runs(experiment_names=["ukraine-seeds"], filter_string="tags.kind = 'cv-fold'")
    assert len(children) == 5 and (children["metrics.test/same_as_torch"] == 1.0).all()
    from pipeline.process import scratch_root

    assert not list(scratch_root().glob("cv-runtime-*"))  # the exported fold models are gone


def test_compare_lists_runs_best_first(mlflow_store, tmp_path, tiny_model_dir):
    started = time.time()
    run_ids = []
    for name in ("majority", "tfidf"):
        config = cfg(f"configs/{name}.yaml", tmp_path, tiny_model_dir)
        run_ids.append(train(config).run_id)
        evaluate(config)
    elapsed = time.time() - started
    df = compare_runs(config)
    assert set(df["backend"]) == {"majority", "tfidf"}
    assert df["test_f_avg"].astype(float).is_monotonic_decreasing
    # seconds: each run's MLflow end minus start (training plus the evaluation logged into it), rounded,
    # and the two runs together last no longer than the loop that made them.
    client = mlflow.MlflowClient()
    expected = {}
    for run_id in run_ids:
        info = client.get_run(run_id).info
        expected[run_id[:8]] = round((info.end_time - info.start_time) / 1000)
    assert dict(zip(df["run_id"], df["seconds"].astype(int))) == expected
    assert sum(expected.values()) <= elapsed + 1
    assert min(expected.values()) >= 1  # training, logging a pyfunc model and evaluating take well over 0.5 s
    text = format_runs(df)
    assert "majority" in text and "tfidf" in text and "test_f_avg" in text


def test_another_corpus_trains_and_evaluates_with_a_config_file_only(mlflow_store, tmp_path, tiny_model_dir):
    config = cfg("configs/example-tweets.yaml", tmp_path, tiny_model_dir, **{"name": "tweets-tiny"})
    result = train(config)
    metrics = evaluate(config)
    assert "test/f_avg" in metrics and metrics["test/n"] == 6
    spec = json.loads((result.model_dir / "stance.json").read_text())
    assert spec["labels"] == ["FAVOR", "AGAINST", "NONE"]
    # The corpus names its own experiment, and the run was logged there, not in the seeds' one.
    experiment = mlflow.get_experiment_by_name("example-tweets")
    assert mlflow.MlflowClient().get_run(result.run_id).info.experiment_id == experiment.experiment_id


def test_cli_reports_bad_config_and_missing_model(tmp_path, mlflow_store):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "extends: " + str((__import__("pathlib").Path("configs/base.yaml")).resolve()) + "\ntraining:\n  epocs: 3\n"
    )
    res = subprocess.run(
        [sys.executable, "-m", "pipeline", "train", "--config", str(bad)], capture_output=True, text=True
    )
    assert res.returncode == 1 and f"{bad}: training.epocs: unknown key" in res.stderr
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeline",
            "evaluate",
            "--config",
            "configs/finetune.yaml",
            "--set",
            f"models_dir={tmp_path}",
        ],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 1 and "train it with `make train`" in res.stderr
