"""The zero-shot backend: entailment index and label mapping from the model, batching, mention
gating, odd inputs, config checks, save/load, and the MLflow train/evaluate/cv flow."""

from __future__ import annotations

import json
import re
from pathlib import Path

import mlflow
import numpy as np
import pytest

from pipeline.config import ConfigError, load_config
from pipeline.data.datasets import build_dataset
from pipeline.models.encoders import ModelLoadError
from pipeline.models.inputs import InputError, rows_of
from pipeline.models.registry import build_model, load_model
from tests.conftest import build_tiny_transformer, tiny_overrides, write_yaml

# A non-default class order: the entailment index must come from the model config.
NLI_ID2LABEL = {0: "contradiction", 1: "neutral", 2: "entailment"}
HYPOTHESES = {
    "default": {
        "favor": ["{actor} supports {target} ."],
        "against": ["{actor} against {target} ."],
        "none": ["{actor} on {target} ."],
    }
}

ROWS = [
    {"text": "Zelensky said Macron urged concessions.", "actor": "macron", "target": "concessions"},
    {"text": "Zelensky said Macron urged concessions.", "actor": "zelensky", "target": "concessions"},
    {"text": "Putin refused talks with Kyiv.", "actor": "putin", "target": "negotiations"},
    {"text": "Putin refused talks with Kyiv.", "actor": "ukraine_gov", "target": "integrity"},
    {
        "text": "The Kremlin said Russia will not return the land, and Putin will not offer peace talks to Kyiv "
        "for the territorial integrity of Ukraine.",
        "actor": "kremlin",
        "target": "integrity",
    },
]
UNMENTIONED = {"text": "Putin refused talks.", "actor": "scholz", "target": "negotiations"}


@pytest.fixture(scope="module")
def tiny_nli_dir(tmp_path_factory) -> Path:
    return build_tiny_transformer(
        tmp_path_factory.mktemp("nli") / "bert-nli",
        num_labels=3,
        id2label=NLI_ID2LABEL,
        label2id={v: k for k, v in NLI_ID2LABEL.items()},
    )


@pytest.fixture(scope="module")
def permuted_nli_dir(tiny_nli_dir, tmp_path_factory) -> Path:
    """The same weights with the head's classes in another order (entailment first)."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(tiny_nli_dir)
    order = [2, 0, 1]  # new class i is old class order[i]
    with torch.no_grad():
        model.classifier.weight.copy_(model.classifier.weight[order].clone())
        model.classifier.bias.copy_(model.classifier.bias[order].clone())
    model.config.id2label = {i: NLI_ID2LABEL[j] for i, j in enumerate(order)}
    model.config.label2id = {lab: i for i, lab in model.config.id2label.items()}
    folder = tmp_path_factory.mktemp("nli-permuted") / "bert-nli"
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(tiny_nli_dir).save_pretrained(folder)
    return folder


def zs_config(tmp_path, model_dir, **extra):
    """configs/zeroshot-similarity.yaml shrunk for tests, on a tiny model; ``extra`` overrides keys."""
    over = tiny_overrides(tmp_path, model_dir, **{"zeroshot.model": str(model_dir), "zeroshot.threads": 1})
    return load_config("configs/zeroshot-similarity.yaml", over | extra)


def nli_config(tmp_path, model_dir, **extra):
    return zs_config(
        tmp_path,
        model_dir,
        **{
            "zeroshot.method": "nli",
            "zeroshot.hypotheses": HYPOTHESES,
            "zeroshot.calibrate": False,
            "zeroshot.none_threshold": None,
            "zeroshot.temperature": 1.0,
            **extra,
        },
    )


def mapped_config(tmp_path, model_dir, **extra):
    return nli_config(tmp_path, model_dir, **{"zeroshot.nli_scoring": "mapped", **extra})


def forward_counter(model) -> list[int]:
    """Counts forward calls of the backend's torch model (batches, not rows)."""
    calls = [0]
    model._ensure_loaded()
    model.model.register_forward_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    return calls


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


# ------------------------------------------------------------------ NLI: entailment index, label mapping


def test_entailment_index_comes_from_the_model_config(tmp_path, tiny_nli_dir):
    import torch

    model = build_model(nli_config(tmp_path, tiny_nli_dir))
    probs = model.predict_proba(ROWS[:1])
    assert model._entail == 2
    # The candidate rule: the entailment logit of each label's hypothesis, softmax across labels.
    premise = "Zelensky said [Macron] urged concessions."
    hyps = [
        t.format(actor="Emmanuel Macron", target="territorial concessions by Ukraine to Russia")
        for t in (HYPOTHESES["default"][lab][0] for lab in ("favor", "against", "none"))
    ]
    enc = model.tokenizer([premise] * 3, hyps, padding=True, return_tensors="pt")
    with torch.no_grad():
        logits = model.model(**enc).logits.numpy()
    assert np.allclose(probs[0], softmax(logits[:, 2]), atol=1e-5)


@pytest.mark.parametrize("make_config", [nli_config, mapped_config], ids=["candidates", "mapped"])
def test_class_order_of_the_model_does_not_change_predictions(make_config, tmp_path, tiny_nli_dir, permuted_nli_dir):
    a = build_model(make_config(tmp_path, tiny_nli_dir)).predict_proba(ROWS)
    b_model = build_model(make_config(tmp_path, permuted_nli_dir))
    b = b_model.predict_proba(ROWS)
    assert b_model._entail == 0
    assert np.allclose(a, b, atol=1e-5)


def test_mapped_scoring_sends_each_nli_class_to_its_label(tmp_path, tiny_nli_dir):
    import torch

    model = build_model(mapped_config(tmp_path, tiny_nli_dir))
    probs = model.predict_proba(ROWS[:1])
    hyp = "Emmanuel Macron supports territorial concessions by Ukraine to Russia ."
    enc = model.tokenizer(["Zelensky said [Macron] urged concessions."], [hyp], return_tensors="pt")
    with torch.no_grad():
        nli = softmax(model.model(**enc).logits.numpy()[0])  # contradiction, neutral, entailment
    # nli_labels (base.yaml): entailment -> favor, contradiction -> against, neutral -> none
    assert np.allclose(probs[0], [nli[2], nli[0], nli[1]], atol=1e-5)


@pytest.mark.parametrize(
    "mapping, message",
    [
        ({"entailment": "favor", "contradiction": "against"}, r"unmapped \['neutral'\], not in the model \[\]"),
        (
            {"Entailment": "favor", "contradiction": "against", "neutral": "none", "unrelated": "none"},
            r"unmapped \[\], not in the model \['unrelated'\]",
        ),
    ],
)
def test_nli_labels_must_fit_the_model(mapping, message, tmp_path, tiny_nli_dir):
    from pipeline.models.zeroshot import ZeroShotModel

    config = mapped_config(tmp_path, tiny_nli_dir)
    model = ZeroShotModel(config.task, config.model, config.zeroshot.model_copy(update={"nli_labels": mapping}))
    with pytest.raises(ModelLoadError, match=rf"nli_labels .* does not fit .*bert-nli, whose classes .*{message}"):
        model.predict_proba(ROWS[:1])


def test_model_without_entailment_label_is_a_clear_error(tmp_path, tiny_model_dir):
    model = build_model(nli_config(tmp_path, tiny_model_dir))  # id2label LABEL_0, LABEL_1
    with pytest.raises(ModelLoadError, match=rf"{tiny_model_dir} is not an NLI model: .*'entailment'.*LABEL_0"):
        model.predict_proba(ROWS[:1])


def test_similarity_scores_are_cosines_of_mean_pooled_embeddings(tmp_path, tiny_nli_dir):
    import torch

    config = zs_config(tmp_path, tiny_nli_dir, **{"zeroshot.calibrate": False, "zeroshot.none_threshold": 0.3})
    model = build_model(config)
    scores, live = model.raw_scores(ROWS[:1])

    def embed(text):
        enc = model.tokenizer([text], return_tensors="pt")
        with torch.no_grad():
            hidden = model.model(**enc).last_hidden_state[0]
        v = hidden.mean(dim=0).numpy()  # one text, no padding: mean over its tokens
        return v / np.linalg.norm(v)

    premise = embed("Zelensky said [Macron] urged concessions.")
    fill = {"actor": "Emmanuel Macron", "target": "territorial concessions by Ukraine to Russia"}
    for j, label in enumerate(["favor", "against"]):
        cosines = [premise @ embed(t.format(**fill)) for t in config.zeroshot.hypotheses["default"][label]]
        assert scores[0, j] == pytest.approx(np.mean(cosines), abs=1e-5)
    assert live.tolist() == [True] and np.isnan(scores[0, 2])  # none: no hypothesis, the threshold stands in
    probs = model.predict_proba(ROWS[:1])[0]
    expected = softmax(np.array([scores[0, 0], scores[0, 1], 0.3]) / config.zeroshot.temperature)
    assert np.allclose(probs, expected, atol=1e-5)


# ------------------------------------------------------------------ fast path: batching, gating, odd input


@pytest.mark.parametrize("method", ["nli", "similarity"])
def test_batched_equals_one_by_one(method, tmp_path, tiny_nli_dir):
    config = nli_config(tmp_path, tiny_nli_dir) if method == "nli" else zs_config(tmp_path, tiny_nli_dir)
    model = build_model(config)
    batched = model.predict_proba(ROWS, batch_size=2)
    single = np.vstack([model.predict_proba([r], batch_size=1) for r in ROWS])
    assert np.allclose(batched, single, atol=1e-5)
    assert np.allclose(batched.sum(axis=1), 1, atol=1e-6)


def test_one_flat_stream_of_unique_pairs(tmp_path, tiny_nli_dir):
    model = build_model(nli_config(tmp_path, tiny_nli_dir, **{"zeroshot.batch_size": 4}))
    calls = forward_counter(model)
    model.predict_proba(ROWS + ROWS)  # 5 live rows x 3 hypotheses = 15 unique pairs, each twice
    assert calls[0] == 4  # ceil(15 / 4): the whole input in one stream, duplicates scored once


@pytest.mark.parametrize("method", ["nli", "similarity"])
def test_mention_gating_skips_the_model_for_unmentioned_actors(method, tmp_path, tiny_nli_dir):
    config = nli_config(tmp_path, tiny_nli_dir) if method == "nli" else zs_config(tmp_path, tiny_nli_dir)
    model = build_model(config)
    calls = forward_counter(model)
    probs = model.predict_proba([UNMENTIONED] * 3)
    assert calls[0] == 0
    assert probs.tolist() == [[0.0, 0.0, 1.0]] * 3
    mixed = model.predict_proba([ROWS[0], UNMENTIONED])
    assert calls[0] > 0 and mixed[1].tolist() == [0.0, 0.0, 1.0] and mixed[0, 2] < 1

    ungated = build_model(
        config.model_copy(update={"zeroshot": config.zeroshot.model_copy(update={"mention_gating": False})})
    )
    calls = forward_counter(ungated)
    assert ungated.predict_proba([UNMENTIONED])[0, 2] < 1 and calls[0] > 0


def test_an_attributed_quote_speaker_is_scored_not_gated(tmp_path, tiny_nli_dir):
    from pipeline.models.inputs import Row

    model = build_model(zs_config(tmp_path, tiny_nli_dir))
    quote = "“We will never give up our land.”"
    calls = forward_counter(model)
    attributed = model.predict_proba([Row(quote, "zelensky", "concessions", spans=())])  # found as the quote's speaker
    assert calls[0] > 0 and attributed[0, 2] < 1
    assert model.predict_proba([Row(quote, "zelensky", "concessions")]).tolist() == [[0.0, 0.0, 1.0]]  # found by no one


def test_empty_sentence_and_unmatched_actor_are_none_not_a_crash(tmp_path, tiny_nli_dir):
    model = build_model(nli_config(tmp_path, tiny_nli_dir, **{"zeroshot.mention_gating": False}))
    rows = [
        {"text": "", "actor": "macron", "target": "concessions"},
        {"text": "   ", "actor": "macron", "target": "concessions"},
    ]
    assert model.predict_proba(rows).tolist() == [[0.0, 0.0, 1.0]] * 2
    with pytest.raises(InputError, match="row 2: field 'text' must be a string, found null"):  # null is not empty
        model.predict_proba([*rows, {"text": None, "actor": "biden", "target": "integrity"}])
    gated = build_model(nli_config(tmp_path, tiny_nli_dir))
    unmatched = {"text": "The alliance of Nordic states met.", "actor": "draghi", "target": "integrity"}
    assert [p["label"] for p in gated.predict([unmatched, UNMENTIONED])] == ["none", "none"]
    assert gated.predict_proba([]).shape == (0, 3)


# ------------------------------------------------------------------ config checks


def write_child(tmp_path, zeroshot: dict) -> Path:
    return write_yaml(
        tmp_path / "zs.yaml", {"extends": str(Path("configs/zeroshot-similarity.yaml").resolve()), "zeroshot": zeroshot}
    )


@pytest.mark.parametrize(
    "template, message",
    [
        ("{actor} supports it.", "template must contain {target}"),
        ("Ukraine supports peace.", "template must contain {actor} and {target}"),
        ("{actor} supports {target} {when}.", r"may use only {actor} and {target}; found \['when'\]"),
        ("{actor} supports {target", "not a valid format string"),
    ],
)
def test_template_without_its_placeholders_is_refused_at_load(template, message, tmp_path):
    path = write_child(
        tmp_path, {"hypotheses": {"default": {"favor": [template], "against": ["{actor} opposes {target}."]}}}
    )
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert f"{path}: zeroshot.hypotheses.default.favor[0]:" in str(err.value)
    assert re.search(message, str(err.value))


@pytest.mark.parametrize(
    "zeroshot, message",
    [
        ({"hypotheses": {"default": {"FAVOR": ["{actor} backs {target}."]}}}, r"hypotheses.default.FAVOR: not a label"),
        ({"hypotheses": {"nato": {"favor": ["{actor} backs {target}."]}}}, r"hypotheses.nato: not a target id"),
        (
            {"hypotheses": {"concessions": {"favor": ["{actor} backs {target}."]}}},
            r"hypotheses.concessions: no templates for label\(s\) \['against'\]",
        ),
        ({"calibrate": False, "none_threshold": None}, r"hypotheses.default: no templates for label\(s\) \['none'\]"),
        ({"method": "nli", "nli_scoring": "mapped"}, "set none_threshold: null and calibrate: false"),
        ({"nli_labels": {"entailment": "yes"}}, r"nli_labels: 'yes' is not a label"),
    ],
)
def test_hypotheses_must_fit_the_task(zeroshot, message, tmp_path):
    with pytest.raises(ConfigError, match=message):
        load_config(write_child(tmp_path, zeroshot))


def test_other_backends_ignore_the_zeroshot_section():
    config = load_config(
        "configs/example-tweets.yaml"
    )  # labels FAVOR/AGAINST/NONE, base.yaml's favor/against hypotheses
    assert config.model.backend == "transformer" and config.zeroshot.hypotheses


# ------------------------------------------------------------------ fit, save, load


@pytest.fixture(scope="module")
def seed_data():
    return build_dataset(load_config("configs/base.yaml"))


def test_fit_calibrates_the_threshold_and_updates_no_weight(tmp_path, tiny_nli_dir, seed_data):
    config = zs_config(tmp_path, tiny_nli_dir, **{"zeroshot.none_threshold": 5.0})  # above any cosine
    model = build_model(config)
    model._ensure_loaded()
    before = {k: v.clone() for k, v in model.model.state_dict().items()}
    train = seed_data["train"].select(range(60))
    history = model.fit(train)
    assert all((before[k] == v).all() for k, v in model.model.state_dict().items())
    assert model.none_threshold == history["calibrated_none_threshold"] < 1.0
    assert model.info["weights_updated"] is False
    # The picked threshold is at least as good on the training rows as the configured one.
    scores, live = model.raw_scores(rows_of(train))
    y = [model.labels[i] for i in train["label"]]
    from pipeline.metrics import f_avg

    def train_f(threshold):
        pred = [model.labels[i] for i in model._to_probs(scores, live, threshold).argmax(axis=1)]
        return f_avg(y, pred, ["favor", "against"])

    assert history["calibration_train_f_avg"] == pytest.approx(train_f(model.none_threshold))
    assert train_f(model.none_threshold) >= train_f(5.0)

    fixed = build_model(
        zs_config(tmp_path, tiny_nli_dir, **{"zeroshot.calibrate": False, "zeroshot.none_threshold": 0.25})
    )
    assert fixed.fit(train) == {} and fixed.none_threshold == 0.25


@pytest.mark.parametrize("method", ["nli", "similarity"])
def test_save_then_load_needs_nothing_else(method, tmp_path, tiny_nli_dir, seed_data):
    config = nli_config(tmp_path, tiny_nli_dir) if method == "nli" else zs_config(tmp_path, tiny_nli_dir)
    model = build_model(config)
    model.fit(seed_data["train"].select(range(40)))
    rows = rows_of(seed_data["test"].select(range(30)))
    probs = model.predict_proba(rows)
    folder = model.save(tmp_path / "saved")
    assert {"stance.json", "config.json", "model.safetensors", "tokenizer.json"} <= {p.name for p in folder.iterdir()}
    spec = json.loads((folder / "stance.json").read_text())
    assert (
        spec["backend"] == "zeroshot" and spec["zeroshot"]["hypotheses"] == config.zeroshot.model_dump()["hypotheses"]
    )
    assert spec["zeroshot"]["none_threshold"] == model.none_threshold
    again = load_model(folder)
    assert again.backend == "zeroshot" and again.source == str(folder)
    assert np.allclose(again.predict_proba(rows), probs, atol=1e-5)


# ------------------------------------------------------------------ MLflow, like every backend


@pytest.mark.slow
def test_train_evaluate_cv_log_like_other_backends(mlflow_store, tmp_path, tiny_nli_dir):
    import pandas as pd

    from pipeline.experiments.cv import cross_validate
    from pipeline.experiments.evaluate import evaluate
    from pipeline.experiments.train import train

    config = zs_config(tmp_path, tiny_nli_dir)
    result = train(config)
    run = mlflow.MlflowClient().get_run(result.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.tags["backend"] == "zeroshot" and run.data.tags["base_model"] == str(tiny_nli_dir)
    assert run.data.params["zeroshot.model"] == str(tiny_nli_dir)
    assert "{actor} supports {target}." in run.data.params["zeroshot.hypotheses.default.favor"]
    assert "dev/f_avg" in run.data.metrics

    metrics = evaluate(config)
    for key in (
        "test/f_avg",
        "test/macro_f1",
        "test/f_avg_ci_low",
        "test/ece",
        "test/f1/favor",
        "test/f_avg/target/concessions",
    ):
        assert key in metrics, key
    pyfunc = mlflow.pyfunc.load_model(f"runs:/{result.run_id}/model")
    out = pyfunc.predict(pd.DataFrame([ROWS[0], UNMENTIONED]))
    assert list(out.columns) == ["label", "prob_favor", "prob_against", "prob_none"] and out["label"][1] == "none"

    summary = cross_validate(config)
    assert summary["cv/folds"] == 5 and 0 <= summary["cv/f_avg/mean"] <= 1
