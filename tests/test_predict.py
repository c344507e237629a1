"""Inference on new articles: StanceClassifier, input and output formats, bad input, model URIs."""

import csv
import json
import logging

import numpy as np
import pytest

from pipeline.cli import main
from pipeline.config import load_config
from pipeline.data.documents import Document, InputFileError, read_documents
from pipeline.inference.classifier import StanceClassifier
from pipeline.inference.predict import run_predict
from pipeline.inference.records import OutputFileError, read_predictions
from pipeline.models.encoders import ModelLoadError
from pipeline.models.registry import build_model
from tests.conftest import ROOT, tiny_overrides, write_jsonl

ARTICLE = (
    "Macron urged Kyiv to offer concessions to Russia. Zelensky said we are not ready to cede land.\n\n"
    "Talks will go on.\n\n"
    "Sign up for our newsletter with Macron news."
)


def tiny_training_set():
    from datasets import Dataset

    rows = [
        ("Macron urged Ukraine to cede land.", "macron", "concessions", 0),
        ("Zelensky refused to cede land.", "zelensky", "concessions", 1),
        ("Putin said talks will go on.", "putin", "negotiations", 2),
        ("The Kremlin refused talks.", "kremlin", "negotiations", 1),
    ] * 4
    text, actor, target, label = zip(*rows)
    return Dataset.from_dict({"text": text, "actor": actor, "target": target, "label": label})


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, tiny_model_dir):
    """A tiny transformer stance model fitted for one epoch and saved like `make train` saves one."""
    tmp = tmp_path_factory.mktemp("predict")
    config = load_config(
        ROOT / "configs/base.yaml",
        tiny_overrides(tmp, tiny_model_dir, **{"training.epochs": 1, "model.max_length": 48}),
    )
    model = build_model(config)
    model.fit(tiny_training_set())
    return model.save(tmp / "model")


@pytest.fixture(scope="module")
def clf(model_dir):
    return StanceClassifier.load(model_dir)


# ------------------------------------------------------------------ the Python API


def test_analyze_classifies_every_mentioned_actor_on_every_target(clf):
    results = clf.analyze(ARTICLE, doc_id="art")
    targets = clf.task.target_ids
    # Sentence 0 mentions Macron and Kyiv, sentence 1 Zelensky; sentence 2 nobody; 3 is furniture.
    assert [(r.sentence_id, r.actor, r.target) for r in results] == [
        *[("art-000", "macron", t) for t in targets],
        *[("art-000", "ukraine_gov", t) for t in targets],
        *[("art-001", "zelensky", t) for t in targets],
    ]
    for r in results:
        assert ARTICLE[r.start : r.end] == r.sentence
        assert set(r.probs) == set(clf.labels) and r.label == max(r.probs, key=r.probs.get)
        assert abs(sum(r.probs.values()) - 1) < 1e-4
        assert not r.truncated


@pytest.mark.parametrize(
    "text, actors",
    [
        ("macron said talks will go on.", ["macron"]),
        ("MACRON said talks will go on.", ["macron"]),
        ("Macron's plan is peace.", ["macron"]),
        ("Macron\u2019s plan is peace.", ["macron"]),
        ("The French president said talks will go on.", ["macron"]),
        ("the French leader met the Ukrainian president.", ["macron", "zelensky"]),
        ("Putinism and Macronism are not people.", []),
    ],
)
def test_aliases_from_the_models_saved_task(clf, text, actors):
    assert list(dict.fromkeys(r.actor for r in clf.analyze(text))) == actors


def test_text_mentioning_no_actor_gives_an_empty_result(clf):
    assert clf.analyze("The weather in Europe was mild on Monday.") == []
    assert clf.analyze("") == []


def test_predict_rows_returns_label_and_probabilities(clf):
    out = clf.predict([{"text": "Macron urged talks.", "actor": "macron", "target": "negotiations"}])
    assert set(out[0]) == {"label", "probs"} and set(out[0]["probs"]) == set(clf.labels)


def test_batches_give_the_same_predictions_and_documents_are_read_lazily(clf):
    docs = [Document(f"d{i}", ARTICLE) for i in range(6)]
    whole = list(clf.predict_documents(docs, batch_size=256))
    pulled = []

    def stream():
        for doc in docs:
            pulled.append(doc.doc_id)
            yield doc

    it = clf.predict_documents(stream(), batch_size=4)
    first = next(it)
    assert len(pulled) < len(docs)  # the first batch came out before the input was read to the end
    small = [first, *it]
    assert [(p.doc_id, p.sentence_id, p.actor, p.target) for p in small] == [
        (p.doc_id, p.sentence_id, p.actor, p.target) for p in whole
    ]
    assert np.allclose([list(p.probs.values()) for p in small], [list(p.probs.values()) for p in whole], atol=1e-4)


def test_long_sentence_is_cut_around_the_mention_and_flagged(clf):
    words = ["the", "talks", "and", "the", "peace", "table"] * 12
    sentence = " ".join(words[:40] + ["Macron"] + words[40:]) + "."
    results = clf.analyze(sentence)
    assert {r.actor for r in results} == {"macron"} and all(r.truncated for r in results)
    from pipeline.models.inputs import Row

    prepared = clf.model.prepare([Row(sentence, "macron", t) for t in clf.task.target_ids])
    window, cut = prepared[0].text, prepared[0].truncated
    assert cut and "Macron" in window and window in sentence
    assert len(window.split()) < len(sentence.split())
    start = sentence.index(window)
    assert (start == 0 or sentence[start - 1] == " ") and sentence[start + len(window)] in " ."
    assert prepared[0].spans and window[slice(*prepared[0].spans[0])] == "Macron"  # the mention moved with the cut
    assert all(r.truncated and r.text in sentence for r in prepared)
    assert all(clf.model.fits(Row(window, "macron", t)) for t in clf.task.target_ids)
    assert not clf.model.fits(Row(sentence, "macron", "concessions"))


# ------------------------------------------------------------------ input and output files


def make_inputs(tmp_path):
    """The same two articles as a folder, a JSONL and a CSV file."""
    second = "Zelensky refused talks with Putin.\nThe Kremlin said no."
    folder = tmp_path / "articles"
    folder.mkdir()
    (folder / "a1.txt").write_text(ARTICLE, encoding="utf-8")
    (folder / "a2.txt").write_text(second, encoding="utf-8")
    (folder / "metadata.json").write_text(json.dumps([{"id": "a1", "date": "2022-05-10", "title": "T"}]))
    jsonl = write_jsonl(
        tmp_path / "articles.jsonl",
        [
            {"doc_id": "a1", "text": ARTICLE, "date": "2022-05-10", "title": "T"},
            {"doc_id": "a2", "text": second},
        ],
    )
    path = tmp_path / "articles.csv"
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["doc_id", "title", "date", "text"])
        writer.writerow(["a1", "T", "2022-05-10", ARTICLE])  # quoted, with blank lines inside
        writer.writerow(["a2", "", "", second])
    return {"folder": folder, "jsonl": jsonl, "csv": path}


@pytest.mark.parametrize("source", ["folder", "jsonl", "csv"])
@pytest.mark.parametrize("out_format", ["jsonl", "csv"])
def test_every_input_and_output_format(clf, model_dir, tmp_path, source, out_format):
    inputs = make_inputs(tmp_path)
    expected = clf.analyze(ARTICLE, "a1", "2022-05-10") + clf.analyze(
        "Zelensky refused talks with Putin.\nThe Kremlin said no.", "a2"
    )
    out = tmp_path / f"pred.{out_format}"
    result = run_predict(inputs[source], out, str(model_dir), classifier=clf, batch_size=5)
    assert result.stats.documents == 2 and result.stats.pairs == len(expected)
    if out_format == "jsonl":
        records = read_predictions(out)
        assert records[0]["date"] == "2022-05-10" and "date" not in records[-1]
        probs = [list(r["probs"].values()) for r in records]
    else:
        with out.open(encoding="utf-8", newline="") as fh:
            records = list(csv.DictReader(fh))
        assert list(records[0]) == [
            "doc_id",
            "sentence_id",
            "start",
            "end",
            "sentence",
            "actor",
            "target",
            "label",
            "prob_favor",
            "prob_against",
            "prob_none",
            "via",
            "truncated",
            "encoding_replaced",
            "date",
            "model",
        ]
        assert records[0]["date"] == "2022-05-10" and records[-1]["date"] == ""
        probs = [[float(r[f"prob_{lab}"]) for lab in clf.labels] for r in records]
    assert [(r["doc_id"], r["sentence_id"], r["actor"], r["target"]) for r in records] == [
        (p.doc_id, p.sentence_id, p.actor, p.target) for p in expected
    ]
    assert np.allclose(probs, [list(p.probs.values()) for p in expected], atol=1e-4)
    assert {r["model"] for r in records} == {str(model_dir)}
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp file left


def test_cli_predict_with_report(model_dir, tmp_path, capsys):
    inputs = make_inputs(tmp_path)
    out, report = tmp_path / "out" / "pred.jsonl", tmp_path / "report"
    rc = main(
        [
            "predict",
            "--input",
            str(inputs["folder"]),
            "--output",
            str(out),
            "--model",
            str(model_dir),
            "--report",
            str(report),
        ]
    )
    printed = capsys.readouterr().out
    assert rc == 0
    assert "2 documents, 5 sentences (4 with an actor), 18 pairs classified in" in printed and "pairs/s" in printed
    assert len(read_predictions(out)) == 18
    assert {p.name for p in report.iterdir()} == {
        "stance_counts.csv",
        "evidence.csv",
        "report.md",
        "heatmap.png",
        "dna.csv",
    }


# ------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    "name, content",
    [("empty.jsonl", b""), ("empty.csv", b""), ("blank.jsonl", b"\n\n"), ("header.csv", b"doc_id,text\n")],
)
@pytest.mark.parametrize("out_format", ["jsonl", "csv"])
def test_empty_input_gives_a_message_and_an_empty_output(clf, tmp_path, caplog, name, content, out_format):
    path = tmp_path / name
    path.write_bytes(content)
    out = tmp_path / f"pred.{out_format}"
    with caplog.at_level(logging.WARNING):
        result = run_predict(path, out, "m", classifier=clf)
    assert f"{path} is empty: no documents" in caplog.text
    assert result.stats.documents == 0 and result.stats.pairs == 0
    text = out.read_text(encoding="utf-8")
    assert text == "" if out_format == "jsonl" else text.startswith("doc_id,sentence_id,")
    assert len(text.splitlines()) == (0 if out_format == "jsonl" else 1)


def test_empty_txt_file_and_empty_folder(clf, tmp_path, caplog):
    folder = tmp_path / "docs"
    folder.mkdir()
    with caplog.at_level(logging.WARNING):
        run_predict(folder, tmp_path / "a.jsonl", "m", classifier=clf)
    assert f"{folder} holds no .txt files: no documents" in caplog.text
    (folder / "blank.txt").write_text("  \n")
    with caplog.at_level(logging.WARNING):
        result = run_predict(folder, tmp_path / "b.jsonl", "m", classifier=clf)
    assert f"{folder / 'blank.txt'} is empty: no sentences" in caplog.text
    assert result.stats.documents == 1 and result.stats.empty_documents == 1
    assert (tmp_path / "b.jsonl").read_text() == ""


def test_non_utf8_is_an_error_naming_file_and_byte_offset(clf, tmp_path):
    txt = tmp_path / "docs"
    txt.mkdir()
    (txt / "bad.txt").write_bytes(b"Macron said no.\n" + b"caf\xe9 talks.")  # Latin-1 e-acute at byte 19
    with pytest.raises(InputFileError, match=r"bad.txt: byte 19: not valid UTF-8 .*--encoding-errors replace"):
        list(read_documents(txt))
    jsonl = tmp_path / "bad.jsonl"
    first = json.dumps({"text": "Macron said no."}).encode() + b"\n"
    jsonl.write_bytes(first + b'{"text": "Zelensky caf\xe9"}\n')
    with pytest.raises(InputFileError, match=rf"bad.jsonl:2: byte {len(first) + 22}: not valid UTF-8"):
        run_predict(jsonl, tmp_path / "out.jsonl", "m", classifier=clf)
    assert not (tmp_path / "out.jsonl").exists()  # nothing half-written
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_encoding_errors_replace_decodes_and_says_so(clf, tmp_path, caplog):
    jsonl = tmp_path / "bad.jsonl"
    jsonl.write_bytes(b'{"text": "Zelensky caf\xe9 talks."}\n{"text": "Macron said no."}\n')
    out = tmp_path / "out.jsonl"
    with caplog.at_level(logging.WARNING):
        result = run_predict(jsonl, out, "m", classifier=clf, encoding_errors="replace")
    assert "bad.jsonl:1: byte 22: invalid UTF-8 replaced by U+FFFD" in caplog.text
    records = read_predictions(out)
    assert "\ufffd" in records[0]["sentence"] and records[0]["encoding_replaced"] is True
    assert records[-1]["encoding_replaced"] is False
    assert result.stats.encoding_replaced == 1


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("a.jsonl", b'{"text": "ok"}\n{"text": \n', r"a.jsonl:2: not valid JSON"),
        ("b.jsonl", b'{"body": "no text"}\n', r"b.jsonl:1: expected an object with a string 'text' field"),
        ("c.csv", b"doc_id,body\n1,hello\n", r"c.csv:1: expected a header with a 'text' column, found \['doc_id'"),
        ("d.xml", b"<a/>", r"d.xml: unknown input type '.xml'"),
    ],
)
def test_malformed_input_names_file_and_line(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(InputFileError, match=message):
        list(read_documents(path))


def test_missing_input_and_bad_output_name(clf, tmp_path):
    with pytest.raises(InputFileError, match=r"nothing.jsonl: no such file or folder"):
        run_predict(tmp_path / "nothing.jsonl", tmp_path / "o.jsonl", "m", classifier=clf)
    with pytest.raises(OutputFileError, match=r"expected a .jsonl or .csv file name, found '.txt'"):
        run_predict(tmp_path, tmp_path / "o.txt", "m", classifier=clf)


def test_missing_model_folder_and_unknown_uri(tmp_path, capsys):
    with pytest.raises(ModelLoadError, match=rf"model folder {tmp_path / 'nope'} does not exist"):
        StanceClassifier.load(tmp_path / "nope")
    with pytest.raises(ModelLoadError, match=r"unknown model URI 's3://bucket/m': expected a model folder, runs:/"):
        StanceClassifier.load("s3://bucket/m")
    (tmp_path / "in.jsonl").write_text('{"text": "Macron."}\n')
    rc = main(
        [
            "predict",
            "--input",
            str(tmp_path / "in.jsonl"),
            "--output",
            str(tmp_path / "o.jsonl"),
            "--model",
            str(tmp_path / "nope"),
        ]
    )
    assert rc == 1 and f"error: model folder {tmp_path / 'nope'} does not exist" in capsys.readouterr().err
    assert not (tmp_path / "o.jsonl").exists()


# ------------------------------------------------------------------ MLflow model URIs


@pytest.mark.slow
def test_models_and_runs_uris(mlflow_store, tmp_path, tiny_model_dir):
    import mlflow

    from pipeline.experiments.train import train

    result = train(load_config("configs/tfidf.yaml", tiny_overrides(tmp_path, tiny_model_dir)))
    client = mlflow.MlflowClient()
    version = client.search_model_versions("name='stance-ukraine-seeds'")[0].version
    client.set_registered_model_alias("stance-ukraine-seeds", "champion", version)

    text = "Macron urged Ukraine to offer territorial concessions to Russia."
    local = StanceClassifier.load(result.model_dir).analyze(text)
    for uri in ("models:/stance-ukraine-seeds@champion", f"runs:/{result.run_id}/model"):
        clf = StanceClassifier.load(uri)
        assert clf.uri == uri
        got = clf.analyze(text)
        assert [(r.actor, r.target, r.label) for r in got] == [(r.actor, r.target, r.label) for r in local]
        assert np.allclose([list(r.probs.values()) for r in got], [list(r.probs.values()) for r in local])
    with pytest.raises(ModelLoadError, match=r"cannot resolve model URI 'models:/stance-ukraine-seeds@nope'"):
        StanceClassifier.load("models:/stance-ukraine-seeds@nope")


def test_a_task_file_of_the_users_adds_actors_and_targets_without_retraining(model_dir, tmp_path):
    from tests.conftest import write_yaml

    task = write_yaml(
        tmp_path / "task.yaml",
        {
            "labels": ["favor", "against", "none"],
            "actors": [{"id": "merz", "name": "Friedrich Merz", "aliases": ["Merz", "the German chancellor"]}],
            "targets": [{"id": "taurus", "name": "Taurus missiles", "wording": "sending Taurus missiles to Ukraine"}],
        },
    )
    clf = StanceClassifier.load(model_dir, task)
    results = clf.analyze("Merz said Germany would send Taurus missiles. Macron agreed.", date="2025-06-01")
    assert {(r.actor, r.target) for r in results} == {("merz", "taurus")}
    wrong = tmp_path / "wrong.yaml"
    write_yaml(
        wrong,
        {
            "labels": ["pro", "con", "neutral"],
            "none_label": "neutral",
            "actors": [{"id": "merz", "name": "Friedrich Merz"}],
            "targets": [{"id": "taurus", "name": "Taurus", "wording": "Taurus"}],
        },
    )
    with pytest.raises(ModelLoadError, match=r"labels \['pro', 'con', 'neutral'\] differ from the model's"):
        StanceClassifier.load(model_dir, wrong)
