"""Choosing sentences to annotate: scores, diversity, `make suggest`'s folder and MLflow run,
and the simulated active-learning run."""

import csv
import json

import numpy as np
import pytest

from pipeline.annotate.select import SelectionError, check_strategy, disagreement, diverse_top, pair_scores
from pipeline.annotate.simulate import Curve, Simulation, needed
from pipeline.cli import main
from pipeline.config import load_config
from pipeline.data.corpus import parse_corpus
from pipeline.models.registry import build_model
from tests.conftest import ROOT, tiny_overrides, write_jsonl
from tests.test_predict import tiny_training_set

# ------------------------------------------------------------------ scores and diversity


def test_margin_and_entropy_rank_the_undecided_pair_first():
    probs = np.array([[0.98, 0.01, 0.01], [0.40, 0.35, 0.25], [0.6, 0.3, 0.1]])
    for strategy in ("margin", "entropy"):
        scores = pair_scores([probs], strategy)
        assert list(np.argsort(-scores)) == [1, 2, 0]
        assert ((scores >= 0) & (scores <= 1)).all()
    assert pair_scores([probs], "margin")[1] == pytest.approx(1 - 0.05)
    assert pair_scores([np.full((1, 3), 1 / 3)], "entropy")[0] == pytest.approx(1.0)


def test_disagreement_is_zero_when_the_committee_agrees_and_grows_as_it_splits():
    a = np.array([[0.8, 0.1, 0.1], [0.8, 0.1, 0.1]])
    b = np.array([[0.8, 0.1, 0.1], [0.1, 0.8, 0.1]])
    d = disagreement([a, b])
    assert d[0] == pytest.approx(0.0, abs=1e-9)
    assert 0.2 < d[1] <= 1.0
    assert disagreement([np.array([[1.0, 0, 0]]), np.array([[0, 1.0, 0]])])[0] == pytest.approx(np.log(2) / np.log(3))


def test_committee_margin_reads_the_members_mean():
    a, b = np.array([[0.9, 0.05, 0.05]]), np.array([[0.1, 0.85, 0.05]])
    assert pair_scores([a, b], "margin")[0] == pytest.approx(1 - (0.5 - 0.45))  # mean: 0.5, 0.45, 0.05


def test_random_scores_are_seeded():
    probs = np.full((50, 3), 1 / 3)
    one = pair_scores([probs], "random", np.random.default_rng(3))
    assert np.array_equal(one, pair_scores([probs], "random", np.random.default_rng(3)))
    assert not np.array_equal(one, pair_scores([probs], "random", np.random.default_rng(4)))


def test_diverse_top_skips_near_copies_of_a_picked_sentence():
    quote = "We will never cede our land, Zelensky said on Tuesday in Kyiv."
    texts = [quote, quote + " ", quote.replace("Tuesday", "Monday"), "Macron urged talks with Moscow over the winter."]
    scores = np.array([0.95, 0.94, 0.93, 0.60])
    assert diverse_top(scores, texts, 2, diversity=0.0) == [0, 1]  # plain top 2: two copies
    assert diverse_top(scores, texts, 2, diversity=0.3) == [0, 3]
    assert sorted(diverse_top(scores, texts, 10, diversity=0.3)) == [0, 1, 2, 3]  # n above the pool: all


def test_strategy_checks_name_what_is_expected():
    with pytest.raises(SelectionError, match="expected one of"):
        check_strategy("confidence", 1)
    with pytest.raises(SelectionError, match="two or more models"):
        check_strategy("disagreement", 1)
    check_strategy("disagreement", 2)


def test_needed_is_the_first_size_reaching_the_target():
    curve = Curve("margin", {0: 0.1, 20: 0.30, 40: 0.42, 80: 0.41})
    assert needed(curve, 0.40) == 40
    assert needed(curve, 0.5) is None
    assert needed(Curve("margin", {0: 0.6, 20: 0.30, 40: 0.42}), 0.40) == 40  # not 0: no sentence annotated


# ------------------------------------------------------------------ make suggest


@pytest.fixture(scope="module")
def models(tmp_path_factory, tiny_model_dir):
    """Two tiny transformer stance models (different seeds): a committee."""
    tmp = tmp_path_factory.mktemp("suggest")
    out = []
    for seed in (1, 2):
        over = tiny_overrides(tmp, tiny_model_dir, **{"training.epochs": 1, "training.seed": seed})
        model = build_model(load_config(ROOT / "configs/base.yaml", over))
        model.fit(tiny_training_set())
        out.append(str(model.save(tmp / f"model-{seed}")))
    return out


def _suggest(tmp_path, model: str, *extra: str) -> int:
    return main(
        ["suggest", "--input", str(ROOT / "seeds"), "--output", str(tmp_path / "out"), "--model", model, *extra]
    )


def test_suggest_writes_label_studio_doccano_and_a_valid_scaffold(tmp_path, models, mlflow_store, capsys):
    assert _suggest(tmp_path, models[0], "-n", "6") == 0
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == [
        "doccano.jsonl",
        "label_config.xml",
        "scaffold.jsonl",
        "scores.csv",
        "tasks.json",
    ]
    tasks = json.loads((out / "tasks.json").read_text())
    assert len(tasks) == 6
    assert all(t["predictions"][0]["result"] for t in tasks)
    task = load_config(ROOT / "configs/base.yaml").task
    records, issues = parse_corpus(out / "scaffold.jsonl", task)
    assert issues == []
    assert [r.id for r in records] == [t["data"]["unit_id"] for t in tasks]
    lines = (ROOT / "seeds/annotations.jsonl").read_text(encoding="utf-8").splitlines()
    seeds = {json.loads(line)["id"]: json.loads(line) for line in lines}
    for rec in records:  # the sentences and offsets are the corpus's own
        assert (rec.text, rec.start, rec.end) == (seeds[rec.id]["text"], seeds[rec.id]["start"], seeds[rec.id]["end"])
        assert {lab.target for lab in rec.labels} <= set(task.target_ids)
    assert len((out / "doccano.jsonl").read_text().splitlines()) == 6
    assert "picked 6 by margin" in capsys.readouterr().out


def test_scores_csv_lists_every_candidate_and_the_picked_are_the_most_uncertain(tmp_path, models, mlflow_store):
    assert _suggest(tmp_path, models[0], "-n", "5", "--diversity", "0") == 0
    with open(tmp_path / "out/scores.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    picked = [r for r in rows if r["picked"] == "True"]
    assert len(picked) == 5 and len(rows) > 20  # the seeds: every sentence naming an actor is a candidate
    assert sorted(int(r["rank"]) for r in picked) == [1, 2, 3, 4, 5]
    assert min(float(r["score"]) for r in picked) >= max(float(r["score"]) for r in rows if r["picked"] == "False")


def test_the_selection_is_an_mlflow_run(tmp_path, models, mlflow_store):
    import mlflow

    assert _suggest(tmp_path, ",".join(models), "-n", "4", "--strategy", "disagreement") == 0
    runs = mlflow.search_runs(experiment_names=["annotation-suggestions"], output_format="list")
    assert len(runs) == 1
    run = runs[0]
    assert run.data.params["strategy"] == "disagreement" and run.data.params["n"] == "4"
    assert run.data.params["committee_size"] == "2" and run.data.params["models"] == ",".join(models)
    assert run.data.metrics["picked"] == 4 and run.data.metrics["candidates"] > 4
    names = {a.path for a in mlflow.MlflowClient().list_artifacts(run.info.run_id, "suggestions")}
    assert "suggestions/scores.csv" in names


def test_suggest_refuses_an_existing_folder_and_one_model_for_disagreement(tmp_path, models, mlflow_store, capsys):
    (tmp_path / "out").mkdir()
    (tmp_path / "out/mine.txt").write_text("a user's file")
    assert _suggest(tmp_path, models[0]) == 1
    assert "exists" in capsys.readouterr().err
    assert _suggest(tmp_path, models[0], "--strategy", "disagreement", "--overwrite") == 1
    assert "two or more models" in capsys.readouterr().err
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["mine.txt"]  # the old folder untouched


def test_input_without_any_actor_is_refused_and_nothing_written(tmp_path, models, mlflow_store, capsys):
    write_jsonl(tmp_path / "in.jsonl", [{"doc_id": "a", "text": "The weather was mild. Nobody spoke."}])
    out = tmp_path / "out"
    assert main(["suggest", "--input", str(tmp_path / "in.jsonl"), "--output", str(out), "--model", models[0]]) == 1
    assert "no sentence names an actor of the task (macron, zelensky" in capsys.readouterr().err
    assert not out.exists() and list(tmp_path.iterdir()) == [tmp_path / "in.jsonl"]


def test_two_documents_with_one_id_are_refused(tmp_path, models, mlflow_store, capsys):
    docs = [{"doc_id": "a", "text": "Macron urged Ukraine to cede land."}, {"doc_id": "a", "text": "Zelensky refused."}]
    write_jsonl(tmp_path / "in.jsonl", docs)
    assert (
        main(["suggest", "--input", str(tmp_path / "in.jsonl"), "--output", str(tmp_path / "o"), "--model", models[0]])
        == 1
    )
    assert "doc_id 'a' is used by two documents" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_excluded_units_are_not_suggested_again(tmp_path, models, mlflow_store):
    assert _suggest(tmp_path, models[0], "-n", "5") == 0
    first = tmp_path / "out/scaffold.jsonl"
    done = [json.loads(line)["id"] for line in first.read_text(encoding="utf-8").splitlines()]
    (tmp_path / "round1.jsonl").write_text(first.read_text(encoding="utf-8"), encoding="utf-8")
    assert _suggest(tmp_path, models[0], "-n", "5", "--overwrite", "--exclude", str(tmp_path / "round1.jsonl")) == 0
    lines = (tmp_path / "out/scaffold.jsonl").read_text(encoding="utf-8").splitlines()
    again = [json.loads(line)["id"] for line in lines]
    assert len(again) == 5 and not set(again) & set(done)


# ------------------------------------------------------------------ the simulation


@pytest.mark.slow
def test_simulation_adds_sentences_from_the_pool_and_scores_every_size(tmp_path):
    lines = (ROOT / "data/synthetic/synthetic.jsonl").read_text(encoding="utf-8").splitlines()[:150]
    synthetic = [json.loads(line) for line in lines]
    extra = write_jsonl(tmp_path / "extra.jsonl", synthetic)
    over = {
        "model.backend": "tfidf",
        "data.n_folds": 2,
        "data.extra_train": [{"name": "synthetic", "annotations": str(extra), "task": "data/synthetic/task.yaml"}],
    }
    config = load_config(ROOT / "configs/base.yaml", over)
    sim = Simulation(config, sizes=(5, 10), cache=tmp_path / "cache")
    assert [len(f.pool) for f in sim.folds] and all(len(f.pool) > 10 for f in sim.folds)
    curve = sim.run("margin")
    assert sorted(curve.f_avg) == [0, 5, 10] and all(0 <= v <= 1 for v in curve.f_avg.values())
    random = sim.run_random(0)
    assert random.f_avg[0] == curve.f_avg[0]  # the same model before any sentence is added
    assert sim.trainings == 1 + 2 * 2 * 2  # the base model once, then a model per fold and size and curve

    # Stopped and resumed: finished steps are read back, and only a missing one is trained again.
    steps = sorted((tmp_path / "cache").glob("*/margin-fold1-10.json"))
    assert len(steps) == 1
    steps[0].unlink()
    again = Simulation(config, sizes=(5, 10), cache=tmp_path / "cache")
    assert again.finished(["margin", "random0"]) == {
        "margin": {5: curve.f_avg[5]},
        "random0": {5: random.f_avg[5], 10: random.f_avg[10]},
    }
    assert again.run("margin") == curve and again.run_random(0) == random
    assert again.trainings == 1 and again.resumed == 2 * 2 * 2 - 1
    # Another recipe does not read these steps; a size beyond the pool takes the whole pool.
    other = Simulation(config, sizes=(5, 10_000), diversity=0.0, cache=tmp_path / "cache")
    assert 0 <= other.run("margin").f_avg[10_000] <= 1
    for i, fold in enumerate(other.folds):
        step = json.loads((other.cache.folder / f"margin-fold{i}-10000.json").read_text())
        assert sorted(step["picked"]) == sorted(fold.pool) and "scores" not in step  # the last model picks nothing
    assert other.trainings == 1 + 2 * 2 and other.resumed == 0
    # Random's draw of the whole pool is margin's training set: trained once, shared.
    randoms = other.run_randoms([0, 1])
    assert other.trainings == 1 + 2 * 2 + 2 * 2 and other.reused == 2 * 2
    assert all(c.f_avg[10_000] == other.run("margin").f_avg[10_000] for c in randoms)


def test_a_warm_start_goes_on_from_the_fitted_weights(tmp_path, tiny_model_dir):
    import copy

    from pipeline.models.inputs import Row

    over = tiny_overrides(tmp_path, tiny_model_dir, **{"training.epochs": 1})
    model = build_model(load_config(ROOT / "configs/base.yaml", over))
    model.fit(tiny_training_set())
    rows = [Row("Macron urged Ukraine to cede land.", "macron", "concessions")]
    fitted = model.predict_proba(rows)
    still = copy.deepcopy(model)
    still.training = still.training.model_copy(update={"learning_rate": 0.0})
    still.fit(tiny_training_set(), warm_start=True)
    assert np.allclose(still.predict_proba(rows), fitted, atol=1e-6)  # no step taken: the fitted model
    cold = copy.deepcopy(still)
    cold.fit(tiny_training_set())  # from the base model: a new, untrained head
    assert not np.allclose(cold.predict_proba(rows), fitted, atol=1e-3)
