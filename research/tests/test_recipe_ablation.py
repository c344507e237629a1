"""research/recipe_ablation.py: the development tool behind the recipe's ablation table
(docs/results/2026-11-22-recipe-ablation-h100.md)."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from tests.conftest import ROOT, build_tiny_transformer, write_jsonl


@pytest.fixture(scope="module")
def ablation():
    spec = importlib.util.spec_from_file_location("recipe_ablation", ROOT / "research" / "recipe_ablation.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    """A flat benchmark file (train/dev/test) whose words give the stance away, and a tiny BERT."""
    tmp = tmp_path_factory.mktemp("ablation")
    words = {"favor": "support", "against": "refuse", "none": "said"}
    rows = []
    for i in range(60):
        split = "train" if i < 36 else "dev" if i < 48 else "test"
        stance = ["favor", "against", "none"][i % 3]
        target = "mayor" if i % 2 else "bike lanes"
        rows.append(
            {
                "id": f"t{i}",
                "text": f"we {words[stance]} the {target} @someone &amp; http://x.y/{i}",
                "actor": "author",
                "target": target,
                "stance": stance,
                "split": split,
            }
        )
    data = write_jsonl(tmp / "data.jsonl", rows)
    return data, build_tiny_transformer(tmp / "bert")


def test_variant_reports_dev_scores_per_epoch_and_never_reads_test(ablation, bench):
    data_path, model_dir = bench
    data = ablation.load_splits(data_path)
    assert set(data) == {"train", "dev"} and len(data["dev"]) == 12  # test rows are not even loaded
    out = ablation.run_variant({"epochs": 2, "bs": 8, "lr": 1e-3, "seed": 1}, data, model_dir, wording={})
    assert [h["epoch"] for h in out["hist"]] == [1, 2]
    assert out["best"] == max(h["dev_f_avg"] for h in out["hist"]) and 0.0 <= out["best"] <= 1.0
    probs = np.array(out["probs"])
    assert probs.shape == (12, 3) and np.allclose(probs.sum(1), 1.0, atol=1e-3)
    again = ablation.run_variant({"epochs": 2, "bs": 8, "lr": 1e-3, "seed": 1}, data, model_dir, wording={})
    assert again["probs"] == out["probs"]  # same seed, same numbers on CPU


def test_every_option_trains(ablation, bench):
    """The options the pipeline lacks (LLRD, R-drop, SupCon, weight averaging, MLM) all run and differ from the base."""
    data_path, model_dir = bench
    data = ablation.load_splits(data_path)
    base = {"epochs": 2, "bs": 8, "lr": 1e-3, "seed": 3}
    plain = ablation.run_variant(base, data, model_dir, wording={})
    for extra in (
        {"llrd": 0.8},
        {"rdrop": 1.0},
        {"supcon": 0.2},
        {"mlm_epochs": 1},
        {"pool": "cls", "reinit": 1},
        {"cw": "balanced", "ls": 0.1, "sched": "cosine"},
        {"single": True, "first": "stance on {t}"},
    ):
        out = ablation.run_variant({**base, **extra}, data, model_dir, wording={})
        assert out["probs"] != plain["probs"], extra
    swa = ablation.run_variant({**base, "swa_from": 1}, data, model_dir, wording={})
    assert 0.0 <= swa["swa"] <= 1.0


def test_summary_groups_seeds_assembles_per_target_models_and_blends(ablation, bench, tmp_path):
    data_path, model_dir = bench
    data = ablation.load_splits(data_path)
    results = [
        ablation.run_variant({"epochs": 1, "bs": 8, "lr": 1e-3, "seed": s}, data, model_dir, wording={}) for s in (1, 2)
    ]
    results += [
        ablation.run_variant({"epochs": 1, "bs": 8, "seed": 1, "targets": [t]}, data, model_dir, wording={})
        for t in ("mayor", "bike lanes")
    ]
    results.append({"variant": {"lr": 1.0}, "error": "RuntimeError('nan')"})  # failed variants are skipped
    text = ablation.summarise(results, data)
    row = next(line for line in text.splitlines() if line.startswith('{"bs": 8, "epochs": 1'))
    assert row.split(" | ")[1] == "2"  # two seeds, one row
    assert "one model per target" in text and "all 2 joint models" in text and "TF-IDF+LR alone" in text


def test_bad_rows_name_the_line(ablation, tmp_path):
    path = write_jsonl(
        tmp_path / "bad.jsonl",
        [
            {"text": "x", "target": "t", "stance": "favor", "split": "train"},
            {"text": "y", "target": "t", "stance": "maybe", "split": "dev"},
        ],
    )
    with pytest.raises(SystemExit, match=r"bad.jsonl:2: stance 'maybe'"):
        ablation.load_splits(path)


def test_half_copy_is_read_like_the_original(ablation, bench, tmp_path):
    data_path, model_dir = bench
    data = ablation.load_splits(data_path)
    ablation.main(["half-copy", "--model", str(model_dir), str(tmp_path / "half")])
    assert (tmp_path / "half" / "model16.safetensors").exists() and not (
        tmp_path / "half" / "model.safetensors"
    ).exists()
    v = {"epochs": 1, "bs": 8, "lr": 1e-3, "seed": 2}
    full, half = (ablation.run_variant(v, data, m, wording={}) for m in (model_dir, tmp_path / "half"))
    assert np.allclose(full["probs"], half["probs"], atol=0.02)  # float16 weights: nearly the same model
