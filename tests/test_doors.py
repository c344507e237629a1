"""One input path: evaluate, make predict, the logged MLflow model (REST) and Spark give the model
the same input for the same (sentence, actor, target), long sentences and marked mentions included."""

import numpy as np
import pandas as pd
import pytest

from pipeline.config import load_config
from pipeline.data.corpus import Label, Record
from pipeline.data.datasets import features, to_examples
from pipeline.experiments.train import score
from pipeline.inference.classifier import StanceClassifier
from pipeline.models.registry import build_model
from tests.conftest import ROOT, tiny_overrides

LONG = " ".join(["the talks and the peace table"] * 8)
SENTENCES = [
    "Macron urged Kyiv to offer concessions to Russia, while Zelensky refused to cede land.",
    f"In a long speech on {LONG}, Putin said Moscow was ready for negotiations with {LONG}.",
    "The Kremlin rejected any talks with Kyiv.",
]


DOORS = ["transformer", "zeroshot-stance", "transformer:onnx-int8", "zeroshot-stance:onnx"]


@pytest.fixture(scope="module", params=DOORS)
def setup(request, tmp_path_factory, tiny_model_dir):
    """A fine-tuned model, and the zero-shot backend's stance method wrapping the same model; each on
    PyTorch and exported to an ONNX runtime (``make export``), which every door must then run."""
    from pipeline.models.export import export_model

    kind, _, runtime = request.param.partition(":")
    from datasets import Dataset

    tmp = tmp_path_factory.mktemp("doors")
    config = load_config(ROOT / "configs/base.yaml", tiny_overrides(tmp, tiny_model_dir, **{"model.max_length": 48}))
    rows = [(s, "putin", "negotiations", i % 3) for i, s in enumerate(SENTENCES * 4)]
    train = Dataset.from_dict(dict(zip(["text", "actor", "target", "label"], zip(*rows))))
    model = build_model(config)
    model.fit(train)
    folder = model.save(tmp / "model")
    if kind == "zeroshot-stance":
        config = load_config(ROOT / "configs/zeroshot.yaml", {"zeroshot.model": str(folder), "zeroshot.threads": 1})
        model = build_model(config)
        model.fit(None)
        folder = model.save(tmp / "zeroshot")
    if runtime:
        export_model(folder, runtime)
    clf = StanceClassifier.load(folder)
    inner = getattr(clf.model, "stance_model", None) or clf.model
    assert (inner.onnx is not None) == bool(runtime)
    predictions = clf.analyze(" ".join(SENTENCES), doc_id="doc")
    return config, folder, clf, predictions


def tolerance(clf) -> float:
    """How far a door's probabilities may be from another's. Dynamic int8 quantises each activation
    with a scale taken over its whole batch, so a pair's probabilities move a little with the
    pairs batched beside it, and the doors batch differently (Spark: per partition)."""
    return 1e-2 if clf.model.model_cfg.runtime == "onnx-int8" else 1e-5


def _by_pair(predictions):
    return {(p.sentence, p.actor, p.target): np.array(list(p.probs.values())) for p in predictions}


def test_evaluate_gives_the_model_what_predict_gives_it(setup):
    from datasets import Dataset

    config, _, clf, predictions = setup
    pairs = _by_pair(predictions)
    assert any(p.truncated for p in predictions)  # the long sentence was cut around Putin's mention
    records = [
        Record(
            id=f"doc-{i}",
            text=p_sentence,
            labels=tuple(Label(a, t, "none") for (s, a, t) in pairs if s == p_sentence),
            doc_id="doc",
            line=i + 1,
        )
        for i, p_sentence in enumerate(dict.fromkeys(s for s, _, _ in pairs))
    ]
    examples = [{k: v for k, v in e.items() if not k.startswith("_")} for e in to_examples(records, config.task)]
    dataset = Dataset.from_list(examples, features=features(config.task))
    _, probs = score(clf.model, dataset, config)
    for example, p in zip(examples, probs):
        assert np.abs(p - pairs[(example["text"], example["actor"], example["target"])]).max() <= tolerance(clf)


def test_the_logged_mlflow_model_gives_the_same_answers(setup, tmp_path):
    import mlflow.pyfunc

    _, folder, clf, predictions = setup
    target = tmp_path / "pyfunc"
    mlflow.pyfunc.save_model(
        path=str(target),
        python_model=str(ROOT / "pipeline/models/mlflow_model.py"),
        artifacts={"model": str(folder)},
        code_paths=[str(ROOT / "pipeline")],
    )
    frame = pd.DataFrame([{"text": p.sentence, "actor": p.actor, "target": p.target} for p in predictions])
    loaded = mlflow.pyfunc.load_model(str(target))
    served = loaded.unwrap_python_model().model
    assert served.model_cfg.runtime == clf.model.model_cfg.runtime
    out = loaded.predict(frame)
    expected = np.array([list(p.probs.values()) for p in predictions])
    got = out[[f"prob_{lab}" for lab in clf.labels]].to_numpy()
    assert np.abs(got - expected).max() <= tolerance(clf)
    assert list(out["label"]) == [p.label for p in predictions]


@pytest.mark.slow
def test_spark_gives_the_same_answers(setup, tmp_path):
    pytest.importorskip("pyspark")
    from pipeline.inference.spark import mlflow_model_uri, score_frame, spark_session, stance_udf

    _, folder, clf, predictions = setup
    frame = pd.DataFrame([{"text": p.sentence, "actor": p.actor, "target": p.target} for p in predictions])
    spark = spark_session("local[2]")
    uri, labels = mlflow_model_uri(str(folder), tmp_path)
    scored = score_frame(spark.createDataFrame(frame), stance_udf(spark, uri, labels)).toPandas()
    expected = np.array([list(p.probs.values()) for p in predictions])
    got = scored[[f"prob_{lab}" for lab in labels]].to_numpy()
    assert np.abs(got - expected).max() <= tolerance(clf), np.abs(got - expected).max()
