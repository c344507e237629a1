"""Each kind of validation error, with the file, line, field and expectation it names."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.config import load_config
from pipeline.data.corpus import CorpusError
from pipeline.data.validate import load_records, validate
from tests.conftest import write_jsonl


def rec(i=0, **over):
    base = {
        "id": f"u{i}",
        "text": "Macron urged talks.",
        "labels": [
            {"actor": "macron", "target": t, "label": "none"} for t in ("concessions", "integrity", "negotiations")
        ],
    }
    return {**base, **over}


def config_for(path, **data):
    return load_config(
        "configs/base.yaml",
        {
            "data.annotations": str(path),
            "data.documents": None,
            "data.metadata": None,
            **{f"data.{k}": v for k, v in data.items()},
        },
    )


def issues_for(tmp_path, lines, **data) -> list[str]:
    path = tmp_path / "c.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    _, issues = validate(config_for(path, **data))
    return [str(i) for i in issues]


def dumps(*records):
    return [json.dumps(r) for r in records]


def test_the_seed_corpus_is_valid():
    records, issues = validate(load_config("configs/base.yaml"))
    assert issues == []
    assert len(records) >= 150 and sum(len(r.labels) for r in records) >= 300


def test_make_validate_command_passes_and_fails(tmp_path):
    ok = subprocess.run([sys.executable, "-m", "pipeline", "validate"], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    bad = write_jsonl(
        tmp_path / "bad.jsonl", [rec(labels=[{"actor": "nobody", "target": "integrity", "label": "none"}])]
    )
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(
        f"extends: {Path('configs/base.yaml').resolve()}\n"
        f"data:\n  annotations: {bad}\n  documents: null\n  metadata: null\n"
    )
    res = subprocess.run(
        [sys.executable, "-m", "pipeline", "validate", "--config", str(cfg)], capture_output=True, text=True
    )
    assert res.returncode == 1
    assert f"{bad}:1: labels[0].actor: expected one of [" in res.stderr and "found 'nobody'" in res.stderr


def test_invalid_json_names_line_and_column(tmp_path):
    out = issues_for(tmp_path, [*dumps(rec(0)), '{"id": "u1", "text": '])
    assert any(":2: not valid JSON:" in i and "column" in i for i in out)


def test_missing_field_and_wrong_type(tmp_path):
    out = issues_for(tmp_path, dumps({"id": "u0", "labels": []}, rec(1, text=5)))
    assert any(":1: text: missing required field (expected str)" in i for i in out)
    assert any(":2: text: expected str, found int 5" in i for i in out)


def test_unknown_field_is_named(tmp_path):
    out = issues_for(tmp_path, dumps(rec(0, lables=[])))
    assert any(":1: lables: unknown field" in i for i in out)


@pytest.mark.parametrize(
    "field, value, found",
    [("actor", "macrn", "'macrn'"), ("target", "borders", "'borders'"), ("label", "FAVOR", "'FAVOR'")],
)
def test_ids_are_checked_against_the_config(tmp_path, field, value, found):
    labels = rec()["labels"]
    labels[0] = {**labels[0], field: value}
    out = issues_for(tmp_path, dumps(rec(0, labels=labels)))
    assert any(f":1: labels[0].{field}: expected one of [" in i and f"found {found}" in i for i in out)


def test_duplicates(tmp_path):
    labels = rec()["labels"]
    out = issues_for(tmp_path, dumps(rec(0), rec(0), rec(1, labels=labels + [labels[0]])))
    assert any(":2: id: duplicate id 'u0' (first on line 1)" in i for i in out)
    assert any(":3: labels[3]: duplicate label for actor 'macron' and target 'concessions'" in i for i in out)


def test_furniture_is_never_labelled(tmp_path):
    out = issues_for(tmp_path, dumps(rec(0, furniture=True)))
    assert any(":1: labels: page furniture is never labelled; expected [], found 3 label(s)" in i for i in out)


def test_mentioned_actor_needs_every_target(tmp_path):
    out = issues_for(tmp_path, dumps(rec(0, text="Macron met Putin."), rec(1, labels=rec()["labels"][:2])))
    assert any(":1: labels: actor 'putin' is mentioned but has no label for target(s)" in i for i in out)
    assert any(
        ":2: labels: actor 'macron' is labelled but has no label for target(s) ['negotiations']" in i for i in out
    )


def test_a_dated_title_needs_labels_for_its_holder_at_the_record_date(tmp_path):
    scholz = [{"actor": "scholz", "target": t, "label": "none"} for t in ("concessions", "integrity", "negotiations")]
    line = rec(0, text="The German chancellor spoke.", labels=scholz, date="2024-03-01")
    assert issues_for(tmp_path, dumps(line)) == []  # Scholz held the title then, not Merz
    out = issues_for(tmp_path, dumps(line | {"date": "2025-06-01"}))
    assert any("actor 'merz' is mentioned but has no label" in i for i in out)


def test_split_must_be_known_and_given_to_all_or_none(tmp_path):
    out = issues_for(tmp_path, dumps(rec(0, split="validation"), rec(1, split="train"), rec(2)))
    assert any(":1: split: expected one of ['train', 'dev', 'test'], found 'validation'" in i for i in out)
    assert any(":3: split: some records have a split and this one has none" in i for i in out)


def test_empty_and_missing_files(tmp_path):
    assert any("the corpus is empty" in i for i in issues_for(tmp_path, [""]))
    _, issues = validate(config_for(tmp_path / "none.jsonl"))
    assert "none.jsonl: corpus file not found" in str(issues[0])


def test_offsets_text_and_coverage_against_the_articles(tmp_path):
    doc = "First sentence here. Macron spoke second.\n\nThird one."
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "d1.txt").write_text(doc, encoding="utf-8")
    good0 = {"id": "d1-000", "doc_id": "d1", "start": 0, "end": 20, "text": "First sentence here.", "labels": []}
    wrong_offsets = {**rec(), "id": "d1-001", "doc_id": "d1", "start": 21, "end": 30, "text": "Macron spoke second."}
    wrong_text = {"id": "d1-002", "doc_id": "d1", "start": 43, "end": 53, "text": "Third two.", "labels": []}
    stray = {"id": "d1-009", "doc_id": "d1", "start": 0, "end": 5, "text": "First", "labels": []}
    no_doc = {"id": "d2-000", "doc_id": "d2", "start": 0, "end": 1, "text": "x", "labels": []}
    path = write_jsonl(tmp_path / "c.jsonl", [good0, wrong_offsets, wrong_text, stray, no_doc])
    _, issues = validate(config_for(path, documents=str(docs)))
    out = [str(i) for i in issues]
    assert any(":2: start: expected offsets 21-41 for d1-001, found 21-30" in i for i in out)
    assert any(":3: text: does not match" in i and "expected 'Third one.', found 'Third two.'" in i for i in out)
    assert any(":4: id: 'd1-009' is not a sentence id of" in i for i in out)
    assert any(":5: doc_id: expected a document" in i and "d2.txt" in i for i in out)
    del_first = write_jsonl(tmp_path / "c2.jsonl", [wrong_text])
    out = [str(i) for i in validate(config_for(del_first, documents=str(docs)))[1]]
    assert any("sentence d1-000 of" in i and "has no record" in i for i in out)


def test_metadata_is_checked(tmp_path):
    meta = tmp_path / "meta.json"
    meta.write_text(json.dumps([{"id": "000_8e3b02a82cfd0016", "date": "May 2022"}, {"id": "zzz"}]))
    config = load_config("configs/base.yaml", {"data.metadata": str(meta)})
    out = [str(i) for i in validate(config)[1]]
    assert any("[0].date: expected an ISO date (YYYY-MM-DD), found 'May 2022'" in i for i in out)
    assert any("[1].id: no document zzz.txt" in i for i in out)


def test_load_records_raises_with_every_issue(tmp_path):
    path = write_jsonl(tmp_path / "c.jsonl", [rec(0, split="x"), rec(0)])
    with pytest.raises(CorpusError) as err:
        load_records(config_for(path))
    assert len(err.value.issues) == 2 and "2 problem(s)" in str(err.value)


def test_non_utf8_line_is_reported(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_bytes(json.dumps(rec(0)).encode() + b"\n" + b'{"id": "\xff"}\n')
    _, issues = validate(config_for(path))
    assert any(":2: not UTF-8" in str(i) for i in issues)


# ---------------------------------------------------------------- flat benchmark files


def flat_config(tmp_path, lines, **data):
    from tests.conftest import TWEET_TASK, write_yaml

    corpus = write_jsonl(tmp_path / "bench.jsonl", lines)
    cfg = {
        "name": "bench",
        "task": TWEET_TASK,
        "data": {
            "annotations": str(corpus),
            "format": "flat",
            "fields": {"label": "stance"},
            "group_by": "id",
            "complete_labels": False,
        }
        | data,
    }
    return load_config(write_yaml(tmp_path / "bench.yaml", cfg))


def test_flat_benchmark_lines_become_one_label_records(tmp_path):
    from pipeline.data.datasets import build_dataset

    lines = [
        {
            "id": "a",
            "text": "Vote the mayor out",
            "actor": "author",
            "target": "Mayor Smith",
            "stance": "against",
            "split": "train",
            "extra": 1,
        },
        {"id": "b", "text": "More bike lanes please", "target": "bike_lanes", "stance": "FAVOR", "split": "train"},
        {
            "id": "c",
            "text": "Bike lanes on 5th",
            "actor": "The Tweet's Author",
            "target": "BIKE LANES",
            "stance": "None",
            "split": "dev",
        },
        {
            "id": "d",
            "text": "Mayor at the library",
            "actor": "author",
            "target": "mayor",
            "stance": "NONE",
            "split": "test",
        },
    ]
    records = load_records(flat_config(tmp_path, lines))
    assert [(r.id, r.split) for r in records] == [("a", "train"), ("b", "train"), ("c", "dev"), ("d", "test")]
    assert [(lab.actor, lab.target, lab.label) for r in records for lab in r.labels] == [
        ("author", "mayor", "AGAINST"),
        ("author", "bike_lanes", "FAVOR"),
        ("author", "bike_lanes", "NONE"),
        ("author", "mayor", "NONE"),
    ]
    dd = build_dataset(flat_config(tmp_path, lines))
    assert {k: len(v) for k, v in dd.items()} == {"train": 2, "dev": 1, "test": 1}


def test_flat_errors_name_the_files_own_fields(tmp_path):
    lines = [
        {"id": "a", "text": "x", "target": "parking", "stance": "favor"},
        {"id": "b", "text": "y", "target": "mayor"},
        {"id": "c", "text": 3, "target": "mayor", "stance": "favor"},
        {"ident": "d", "text": "z", "target": "mayor", "stance": "favor"},
    ]
    _, issues = validate(flat_config(tmp_path, lines, fields={"label": "stance", "id": "ident"}))
    shown = [str(i) for i in issues]
    assert any(":1: target: expected one of ['mayor', 'bike_lanes'] (or a name), found 'parking'" in s for s in shown)
    assert any(":2: stance: missing required field (label)" in s for s in shown)
    assert any(":3: text: expected str, found int" in s for s in shown)
    assert any(":3: ident: missing required field" in s for s in shown)
    assert not any(":4:" in s for s in shown)


def test_flat_field_names_are_checked_in_the_config(tmp_path):
    from pipeline.config import ConfigError

    with pytest.raises(ConfigError, match="data.fields.*unknown field.*'stance'"):
        flat_config(tmp_path, [], fields={"stance": "label"})
