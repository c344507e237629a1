"""Label Studio and doccano files both ways, and the import into a corpus (no server: files only)."""

from __future__ import annotations

import json
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from pipeline.annotate import doccano, labelstudio
from pipeline.annotate.merge import ImportRefused, import_annotations
from pipeline.annotate.suggested import Suggested
from pipeline.cli import main
from pipeline.config import TaskConfig
from tests.conftest import ROOT, write_jsonl, write_yaml

TASK_DICT = {
    "labels": ["favor", "against", "none"],
    "none_label": "none",
    "actors": [
        {"id": "macron", "name": "Emmanuel Macron", "aliases": ["Macron"]},
        {"id": "zelensky", "name": 'Volodymyr "Z" <Zelensky> & co', "aliases": ["Zelensky"]},
    ],
    "targets": [
        {"id": "concessions", "name": "Territorial concessions", "wording": "territorial concessions"},
        {"id": "talks", "name": "Talks & <peace>", "wording": "peace talks"},
    ],
}
TASK = TaskConfig.model_validate(TASK_DICT)
TEXT1 = 'Macron urged Zelensky to "cede" land & talk.'
TEXT2 = "Zelensky refused."


def labels(*triples: str) -> list[dict[str, str]]:
    return [dict(zip(("actor", "target", "label"), t.split(":"))) for t in triples]


def suggested() -> list[Suggested]:
    rec1 = {
        "id": "d1-000",
        "doc_id": "d1",
        "start": 0,
        "end": len(TEXT1),
        "text": TEXT1,
        "furniture": False,
        "date": "2025-03-01",
        "labels": labels(
            "macron:concessions:favor", "macron:talks:none", "zelensky:concessions:against", "zelensky:talks:none"
        ),
        "meta": {"suggest": {"rank": 1, "score": 0.9, "strategy": "margin", "model": "m"}},
    }
    rec2 = {
        "id": "d1-001",
        "doc_id": "d1",
        "start": len(TEXT1) + 1,
        "end": len(TEXT1) + 1 + len(TEXT2),
        "text": TEXT2,
        "furniture": False,
        "labels": labels("zelensky:concessions:none", "zelensky:talks:none"),
        "meta": {"suggest": {"rank": 2, "score": 0.5, "strategy": "margin", "model": "m"}},
    }
    return [
        Suggested(
            rec1,
            mentions={"macron": [[0, 6]], "zelensky": [[13, 21]]},
            probs={"macron": {"concessions": {"favor": 0.7, "against": 0.1, "none": 0.2}}},
            via={"macron": "name", "zelensky": "quote"},
        ),
        Suggested(rec2, mentions={"zelensky": [[0, 8]]}),
    ]


def choices(**controls: list[str]) -> list[dict]:
    return [
        {"from_name": name, "to_name": "text", "type": "choices", "value": {"choices": value}}
        for name, value in controls.items()
    ]


def annotation(aid: int, result: list[dict], cancelled: bool = False) -> dict:
    return {"id": aid, "completed_by": 1, "result": result, "was_cancelled": cancelled, "ground_truth": False}


def ls_export(tmp_path: Path, annotations: list[list[dict]], name: str = "export.json") -> Path:
    """What Label Studio exports after the tasks of ``write_tasks`` were annotated: ids, the
    tasks' data, the annotations given here (one list per task), predictions as ids."""
    tasks = json.loads(labelstudio.write_tasks(suggested(), TASK, tmp_path / "tasks.json", "m1").read_text())
    for i, (task, anns) in enumerate(zip(tasks, annotations)):
        task.update(id=100 + i, annotations=anns, predictions=[i], drafts=[], meta={})
    path = tmp_path / name
    path.write_text(json.dumps(tasks), encoding="utf-8")
    return path


def accepted(index: int) -> list[dict]:
    """The model's pre-annotation of task ``index``, submitted unchanged."""
    return labelstudio.task_json(suggested()[index], TASK, "m1")["predictions"][0]["result"]


def corpus_config(tmp_path: Path) -> Path:
    corpus = write_jsonl(tmp_path / "unused.jsonl", [{"id": "x", "text": "x", "labels": []}])
    return write_yaml(tmp_path / "cfg.yaml", {"name": "t", "task": TASK_DICT, "data": {"annotations": str(corpus)}})


# ---------------------------------------------------------------- writing


def test_label_config_is_xml_with_every_actor_target_and_label():
    root = ET.fromstring(labelstudio.label_config(TASK))  # well-formed, names with & < > " escaped
    assert root.tag == "View"
    assert root.find("HyperText").attrib == {"name": "text", "value": "$html"}
    assert root.find("HyperText[@name='model']").get("value") == "$model_html"
    actors = root.find("Choices[@name='actors']")
    assert actors.get("choice") == "multiple"
    assert [(c.get("value"), c.get("alias")) for c in actors] == [(a.name, a.id) for a in TASK.actors]
    blocks = root.findall("View[@visibleWhen='choice-selected']")
    assert [b.get("whenChoiceValue") for b in blocks] == ["macron", "zelensky"]
    assert blocks[1].find("Header").get("value") == 'Volodymyr "Z" <Zelensky> & co'
    for block, actor in zip(blocks, TASK.actor_ids):
        questions = block.findall("Choices")
        assert [q.get("name") for q in questions] == [f"{actor}__concessions", f"{actor}__talks"]
        assert [q.find("Header").get("value") for q in questions] == ["Territorial concessions", "Talks & <peace>"]
        for q in questions:
            assert q.get("choice") == "single-radio"
            assert [c.get("value") for c in q.findall("Choice")] == ["favor", "against", "none"]


def test_control_names_that_collide_are_refused():
    task = TaskConfig.model_validate(
        TASK_DICT
        | {
            "actors": [{"id": "a__b", "name": "A"}, {"id": "a", "name": "B"}],
            "targets": [{"id": "c", "name": "C", "wording": "c"}, {"id": "b__c", "name": "D", "wording": "d"}],
        }
    )
    with pytest.raises(ValueError, match="same control name 'a__b__c'"):
        labelstudio.label_config(task)


def test_tasks_carry_the_sentence_highlighted_and_the_model_labels(tmp_path):
    tasks = json.loads(labelstudio.write_tasks(suggested(), TASK, tmp_path / "t.json", "runs:/abc/model").read_text())
    assert len(tasks) == 2
    data = tasks[0]["data"]
    assert {k: data[k] for k in ("unit_id", "doc_id", "start", "end", "date", "text", "rank", "score")} == {
        "unit_id": "d1-000",
        "doc_id": "d1",
        "start": 0,
        "end": len(TEXT1),
        "date": "2025-03-01",
        "text": TEXT1,
        "rank": 1,
        "score": 0.9,
    }
    assert data["actors"] == ["macron", "zelensky"]
    assert data["html"] == (
        '<mark title="Emmanuel Macron">Macron</mark> urged '
        '<mark title="Volodymyr &quot;Z&quot; &lt;Zelensky&gt; &amp; co">Zelensky</mark> '
        "to &quot;cede&quot; land &amp; talk."
    )
    assert data["model_html"] == (  # how each actor was found, and the model's label with its probability
        "Emmanuel Macron (found by name): Territorial concessions: favor 0.70<br/>"
        "Volodymyr &quot;Z&quot; &lt;Zelensky&gt; &amp; co (found by quote)"
    )
    pred = tasks[0]["predictions"][0]
    assert pred["model_version"] == "runs:/abc/model" and pred["score"] == 0.9
    got = {r["from_name"]: r["value"]["choices"] for r in pred["result"]}
    assert got == {
        "actors": ["macron", "zelensky"],
        "macron__concessions": ["favor"],
        "macron__talks": ["none"],
        "zelensky__concessions": ["against"],
        "zelensky__talks": ["none"],
    }
    assert all(r["to_name"] == "text" and r["type"] == "choices" for r in pred["result"])
    assert tasks[1]["data"]["date"] is None


def test_overlapping_mentions_are_marked_once():
    html = labelstudio.mention_html("Macron's team", {"a": [[0, 8]], "b": [[0, 6]]}, {"a": "A", "b": "B"})
    assert html == '<mark title="A">Macron&#x27;s</mark> team'


# ---------------------------------------------------------------- reading a Label Studio export


def test_round_trip_gives_the_annotators_labels(tmp_path):
    changed = choices(
        actors=["macron"], macron__concessions=["against"], macron__talks=["favor"]
    )  # zelensky unticked: d1-000 then has macron only
    export = ls_export(tmp_path, [[annotation(1, accepted(0))], [annotation(2, changed)]])
    # task 101 is d1-001, where the annotator ticked macron only: not checked here (no validation)
    imp = labelstudio.read_export(export, TASK)
    assert imp.issues == [] and imp.conflicts == [] and imp.read == 2
    rec = imp.records[0]
    assert {k: rec[k] for k in ("id", "doc_id", "start", "end", "text", "date", "furniture")} == {
        "id": "d1-000",
        "doc_id": "d1",
        "start": 0,
        "end": len(TEXT1),
        "text": TEXT1,
        "date": "2025-03-01",
        "furniture": False,
    }
    assert rec["labels"] == suggested()[0].record["labels"]
    assert rec["meta"] == {"imported": {"from": "labelstudio", "file": "export.json", "task": 100}}
    assert imp.records[1]["labels"] == labels("macron:concessions:against", "macron:talks:favor")
    assert "date" not in imp.records[1]


def test_cancelled_and_unannotated_tasks_are_skipped_and_counted(tmp_path):
    export = ls_export(tmp_path, [[annotation(1, accepted(0), cancelled=True)], []])
    imp = labelstudio.read_export(export, TASK)
    assert imp.records == [] and imp.cancelled == 1
    assert imp.unannotated == ["task 100: unit 'd1-000'", "task 101: unit 'd1-001'"]
    # a cancelled annotation beside a submitted one: the submitted one counts
    export = ls_export(
        tmp_path, [[annotation(1, choices(actors=["zelensky"]), cancelled=True), annotation(2, accepted(0))]]
    )
    imp = labelstudio.read_export(export, TASK)
    assert [r["id"] for r in imp.records] == ["d1-000"] and imp.cancelled == 1 and imp.conflicts == []


def test_unanswered_target_gets_none_and_unticked_choices_are_ignored(tmp_path):
    result = choices(actors=["Emmanuel Macron"], macron__concessions=["favor"], zelensky__talks=["against"])
    export = ls_export(tmp_path, [[annotation(7, result)]])
    imp = labelstudio.read_export(export, TASK)
    assert imp.records[0]["labels"] == labels("macron:concessions:favor", "macron:talks:none")  # the name is accepted
    assert imp.filled == ["task 100 annotation 7: actor 'macron', target 'talks' unanswered: set to 'none'"]
    assert imp.ignored == [
        "task 100 annotation 7: actor 'zelensky', target 'talks' = 'against' ignored: 'zelensky' is not ticked"
    ]


def test_annotations_that_disagree_are_conflicts_and_agreeing_ones_one_record(tmp_path):
    other = choices(actors=["macron"], macron__concessions=["against"], macron__talks=["none"])
    export = ls_export(tmp_path, [[annotation(1, accepted(0)), annotation(2, other), annotation(3, accepted(0))]])
    imp = labelstudio.read_export(export, TASK)
    assert imp.conflicts == [
        f"{export}: unit d1-000: actor 'macron', target 'concessions': 'favor' in task 100 annotation 1, "
        "task 100 annotation 3; 'against' in task 100 annotation 2",
        f"{export}: unit d1-000: actor 'zelensky', target 'concessions': 'against' in task 100 annotation 1, "
        "task 100 annotation 3; no label in task 100 annotation 2",
        f"{export}: unit d1-000: actor 'zelensky', target 'talks': 'none' in task 100 annotation 1, "
        "task 100 annotation 3; no label in task 100 annotation 2",
    ]
    export = ls_export(tmp_path, [[annotation(1, accepted(0)), annotation(3, accepted(0))]])
    imp = labelstudio.read_export(export, TASK)
    assert imp.conflicts == [] and len(imp.records) == 1


# ---------------------------------------------------------------- validation, merge, conflicts


def test_validation_errors_name_file_task_field_expected_and_found(tmp_path):
    bad_label = choices(actors=["macron", "putin"], macron__concessions=["maybe"], macron__talks=["none"])
    export = ls_export(tmp_path, [[annotation(1, bad_label)], [annotation(2, accepted(1))]])
    tasks = json.loads(export.read_text())
    tasks[1]["data"]["start"] = "18"
    export.write_text(json.dumps(tasks))
    out = tmp_path / "corpus.jsonl"
    with pytest.raises(ImportRefused) as err:
        import_annotations(export, out, TASK)
    assert err.value.lines == [
        f"{export}: task 100 annotation 1: actors: expected an actor id or name of ['macron', 'zelensky'], "
        "found 'putin'",
        f"{export}: task 100 annotation 1: macron__concessions: expected one of ['favor', 'against', 'none'], "
        "found 'maybe'",
        f"{export}: task 101: data.start: expected int, found str '18'",
    ]
    assert str(err.value) == f"3 problem(s) in {export}; nothing written"
    assert not out.exists()


def test_a_mentioned_actor_left_unticked_fails_the_complete_labels_check(tmp_path):
    export = ls_export(tmp_path, [[annotation(1, choices(actors=["macron"]))]])
    with pytest.raises(ImportRefused) as err:
        import_annotations(export, tmp_path / "corpus.jsonl", TASK)
    assert err.value.lines == [
        f"{export}: task 100: actors: actor 'zelensky' is mentioned but has no label for target(s) "
        "['concessions', 'talks']"
    ]
    summary = import_annotations(export, tmp_path / "corpus.jsonl", TASK, complete_labels=False)
    assert summary.added == 1 and summary.imported.filled[0].startswith("task 100 annotation 1: actor 'macron'")


def existing_corpus(tmp_path: Path) -> Path:
    """A corpus that knows another unit and d1-001 (zelensky's labels), compactly written."""
    second = {k: v for k, v in suggested()[1].record.items() if k != "meta"}
    other = {"id": "d0-000", "doc_id": "d0", "text": "Nobody here — «ünïcode».", "labels": []}
    path = tmp_path / "corpus.jsonl"
    path.write_text(
        json.dumps(other, ensure_ascii=False) + "\n" + json.dumps(second, separators=(",", ":")) + "\n",
        encoding="utf-8",
    )
    return path


def test_merge_adds_and_completes_units_without_duplicates(tmp_path):
    corpus = existing_corpus(tmp_path)
    before = corpus.read_bytes().split(b"\n")
    # d1-000 is new to the corpus; on d1-001 the annotator also ticked macron (speaking without being named)
    more = choices(actors=["zelensky", "macron"], macron__concessions=["favor"], macron__talks=["none"])
    export = ls_export(tmp_path, [[annotation(1, accepted(0))], [annotation(2, accepted(1) + more)]])
    summary = import_annotations(export, corpus, TASK)
    assert (summary.added, summary.updated, summary.unchanged, summary.total) == (1, 1, 0, 3)
    lines = corpus.read_bytes().split(b"\n")
    assert lines[0] == before[0]  # an untouched line stays byte for byte
    records = [json.loads(line) for line in lines if line]
    assert [r["id"] for r in records] == ["d0-000", "d1-001", "d1-000"]
    assert records[1]["labels"] == labels(
        "zelensky:concessions:none", "zelensky:talks:none", "macron:concessions:favor", "macron:talks:none"
    )
    assert records[2]["labels"] == suggested()[0].record["labels"]
    assert records[2]["meta"] == {"imported": {"from": "labelstudio", "file": "export.json", "task": 100}}
    assert f"{corpus}: 1 unit(s) added, 1 updated, 0 already there unchanged; 3 units now" in str(summary)
    again = import_annotations(export, corpus, TASK)  # the same export twice: nothing changes
    assert (again.added, again.updated, again.unchanged) == (0, 0, 2)
    assert corpus.read_bytes().split(b"\n") == lines


def test_conflicts_with_the_corpus_are_refused_one_line_each_and_nothing_written(tmp_path):
    corpus = existing_corpus(tmp_path)
    before = corpus.read_bytes()
    result = choices(actors=["zelensky"], zelensky__concessions=["against"], zelensky__talks=["favor"])
    export = ls_export(tmp_path, [[], [annotation(1, result)]])
    tasks = json.loads(export.read_text())
    tasks[1]["data"]["text"] = "Zelensky refused!"
    export.write_text(json.dumps(tasks))
    with pytest.raises(ImportRefused) as err:
        import_annotations(export, corpus, TASK)
    assert err.value.lines == [
        f"{corpus}:2: unit d1-001: text is 'Zelensky refused.' in the corpus, 'Zelensky refused!' in {export} task 101",
        f"{corpus}:2: unit d1-001: actor 'zelensky', target 'concessions': 'none' in the corpus, "
        f"'against' in {export} task 101",
        f"{corpus}:2: unit d1-001: actor 'zelensky', target 'talks': 'none' in the corpus, "
        f"'favor' in {export} task 101",
    ]
    assert str(err.value) == f"3 conflicting label(s) with {corpus}; nothing written"
    assert corpus.read_bytes() == before


def test_an_actor_labelled_in_the_corpus_and_left_unticked_is_a_conflict(tmp_path):
    corpus = existing_corpus(tmp_path)
    before = corpus.read_bytes()
    result = choices(actors=["macron"], macron__concessions=["favor"], macron__talks=["none"])
    export = ls_export(tmp_path, [[], [annotation(1, result)]])
    with pytest.raises(ImportRefused) as err:
        import_annotations(export, corpus, TASK, complete_labels=False)
    assert err.value.lines == [
        f"{corpus}:2: unit d1-001: actor 'zelensky' is labelled in the corpus, not in {export} task 101"
    ]
    assert corpus.read_bytes() == before


def test_a_corpus_with_splits_asks_which_split_new_units_join(tmp_path):
    corpus = tmp_path / "corpus.jsonl"
    other = {"id": "d0-000", "doc_id": "d0", "text": "Nobody here.", "labels": [], "split": "test"}
    corpus.write_text(json.dumps(other) + "\n", encoding="utf-8")
    export = ls_export(tmp_path, [[annotation(1, accepted(0))], []])
    with pytest.raises(ImportRefused, match="--split train"):
        import_annotations(export, corpus, TASK)
    summary = import_annotations(export, corpus, TASK, split="train")
    assert summary.added == 1
    assert json.loads(corpus.read_text(encoding="utf-8").splitlines()[1])["split"] == "train"


def test_a_corpus_line_without_doc_id_is_no_conflict(tmp_path):
    corpus = tmp_path / "corpus.jsonl"
    second = {k: v for k, v in suggested()[1].record.items() if k not in ("meta", "doc_id")}
    corpus.write_text(json.dumps(second) + "\n", encoding="utf-8")
    export = ls_export(tmp_path, [[], [annotation(1, accepted(1))]])
    summary = import_annotations(export, corpus, TASK)
    assert (summary.added, summary.updated, summary.unchanged) == (0, 0, 1)


def test_a_merged_corpus_that_fails_its_check_leaves_no_file_behind(tmp_path):
    corpus = tmp_path / "corpus.jsonl"
    furniture = {"id": "d1-000", "doc_id": "d1", "text": TEXT1, "furniture": True, "labels": []}
    write_jsonl(corpus, [furniture])
    before = corpus.read_bytes()
    export = ls_export(tmp_path, [[annotation(1, accepted(0))]])
    with pytest.raises(ImportRefused) as err:
        import_annotations(export, corpus, TASK)
    assert err.value.lines == [f"{corpus}:1: labels: page furniture is never labelled; expected [], found 4 label(s)"]
    assert corpus.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus.jsonl", "export.json", "tasks.json"]


def test_a_corpus_with_problems_is_refused_before_merging(tmp_path):
    corpus = write_jsonl(tmp_path / "corpus.jsonl", [{"id": "a", "text": "t", "labels": [], "colour": "red"}])
    export = ls_export(tmp_path, [[annotation(1, accepted(0))]])
    with pytest.raises(ImportRefused) as err:
        import_annotations(export, corpus, TASK)
    assert err.value.lines == [
        f"{corpus}:1: colour: unknown field; expected one of "
        "['date', 'doc_id', 'end', 'furniture', 'id', 'labels', 'meta', 'split', 'start', 'text']"
    ]
    assert str(err.value) == f"1 problem(s) in the corpus {corpus}; fix it first"


def test_an_export_in_another_shape_is_named(tmp_path):
    path = tmp_path / "min.json"
    path.write_text(json.dumps([{"text": "x", "actors": "macron"}]))
    imp = labelstudio.read_export(path, TASK)
    assert [str(i) for i in imp.issues] == [
        f"{path}: expected Label Studio's JSON export (a list of tasks with 'data' and 'annotations'; "
        "not JSON-MIN or CSV), found list"
    ]
    path.write_text("[{")
    assert str(labelstudio.read_export(path, TASK).issues[0]).startswith(f"{path}:1: not valid JSON: ")


# ---------------------------------------------------------------- doccano


def doccano_export(tmp_path: Path, nested: bool) -> Path:
    """doccano's export of the written file: its own ids, the metadata back (top level or under meta)."""
    lines = doccano.write_jsonl(suggested(), TASK, tmp_path / "doccano.jsonl").read_text().splitlines()
    out = []
    for i, line in enumerate(lines):
        obj = json.loads(line)
        meta = {k: obj.pop(k) for k in ("unit_id", "doc_id", "start", "end", "date", "model_labels")}
        obj["label"] = meta["model_labels"]  # the annotator accepted the model's labels
        out.append({"id": 40 + i, **obj, "Comments": [], **({"meta": meta} if nested else meta)})
    return write_jsonl(tmp_path / "export.jsonl", out)


def test_doccano_file_has_one_line_per_sentence_with_label_strings(tmp_path):
    lines = doccano.write_jsonl(suggested(), TASK, tmp_path / "d.jsonl").read_text().splitlines()
    first = json.loads(lines[0])
    assert first == {
        "text": TEXT1,
        "label": [],  # doccano would import labels as annotations: untouched lines would come back as gold
        "model_labels": [
            "macron:concessions:favor",
            "macron:talks:none",
            "zelensky:concessions:against",
            "zelensky:talks:none",
        ],
        "unit_id": "d1-000",
        "doc_id": "d1",
        "start": 0,
        "end": len(TEXT1),
        "date": "2025-03-01",
    }
    assert len(lines) == 2


def test_doccano_lines_nobody_labelled_come_back_unannotated(tmp_path):
    written = doccano.write_jsonl(suggested(), TASK, tmp_path / "d.jsonl").read_text().splitlines()
    export = [{"id": 40 + i, **json.loads(line)} for i, line in enumerate(written)]  # exported untouched
    imp = doccano.read_jsonl(write_jsonl(tmp_path / "export.jsonl", export), TASK)
    assert imp.records == [] and imp.unannotated == ["line 1: unit 'd1-000'", "line 2: unit 'd1-001'"]


@pytest.mark.parametrize("nested", [False, True], ids=["top-level", "under-meta"])
def test_doccano_round_trip(tmp_path, nested):
    export = doccano_export(tmp_path, nested)
    rows = [json.loads(line) for line in export.read_text().splitlines()]
    rows[1]["label"] = ["zelensky:concessions:against", "macron:talks:favor"]  # the annotator's changes
    write_jsonl(export, rows)
    imp = doccano.read_jsonl(export, TASK)
    assert imp.issues == [] and imp.conflicts == []
    assert imp.records[0]["labels"] == suggested()[0].record["labels"]
    assert imp.records[1]["labels"] == labels(
        "macron:concessions:none", "macron:talks:favor", "zelensky:concessions:against", "zelensky:talks:none"
    )
    assert imp.filled == [
        "line 2: actor 'zelensky', target 'talks' unanswered: set to 'none'",
        "line 2: actor 'macron', target 'concessions' unanswered: set to 'none'",
    ]
    assert imp.records[1]["start"] == len(TEXT1) + 1 and "date" not in imp.records[1]
    summary = import_annotations(export, tmp_path / "corpus.jsonl", TASK)
    assert (summary.added, summary.total) == (2, 2)


def test_doccano_problems_unannotated_lines_and_double_labels(tmp_path):
    export = doccano_export(tmp_path, nested=True)
    rows = [json.loads(line) for line in export.read_text().splitlines()]
    rows[0]["label"] = ["macron:concessions:favor", "macron:concessions:against"]  # two annotators, merged
    rows[1]["label"] = []
    bad = ["macron:war", "macron:concessions:maybe"]
    rows.append({"id": 9, "text": "x", "label": bad, "meta": {"unit_id": "d9-000", "start": "0", "end": 1}})
    write_jsonl(export, rows)
    imp = doccano.read_jsonl(export, TASK)
    assert imp.unannotated == ["line 2: unit 'd1-001'"]
    assert [str(i) for i in imp.issues] == [
        f"{export}:3: label[0]: expected '<actor>:<target>:<label>', found 'macron:war'",
        f"{export}:3: label[1]: expected '<actor>:<target>:<label>', found 'macron:concessions:maybe' "
        "(label 'maybe' is not one of ['favor', 'against', 'none'])",
    ]
    assert imp.conflicts == [
        f"{export}: unit d1-000: actor 'macron', target 'concessions': 'favor' in line 1; 'against' in line 1"
    ]
    rows[2]["label"] = ["macron:concessions:favor"]
    write_jsonl(export, rows[2:])
    with pytest.raises(ImportRefused) as err:
        import_annotations(export, tmp_path / "corpus.jsonl", TASK, complete_labels=False)
    assert err.value.lines == [f"{export}:1: meta.start: expected int, found str '0'"]


# ---------------------------------------------------------------- the command and make


def test_the_command_imports_and_refuses_an_unknown_extension(tmp_path, capsys):
    export = ls_export(tmp_path, [[annotation(1, accepted(0))], [annotation(2, accepted(1), cancelled=True)]])
    out = tmp_path / "new" / "corpus.jsonl"
    args = [
        "import-annotations",
        "--export",
        str(export),
        "--output",
        str(out),
        "--config",
        str(corpus_config(tmp_path)),
    ]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert f"{export} (Label Studio JSON): 2 task(s) read, 1 unit(s) imported, 1 skipped as unannotated" in printed
    assert f"{out}: 1 unit(s) added, 0 updated, 0 already there unchanged; 1 units now" in printed
    assert [json.loads(line)["id"] for line in out.read_text().splitlines()] == ["d1-000"]
    renamed = export.rename(tmp_path / "export.txt")
    args[2] = str(renamed)
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "cannot tell the format of" in err and "pass --format labelstudio|doccano (make: FORMAT=...)" in err
    assert main([*args, "--format", "labelstudio"]) == 0


def test_make_import_annotations_end_to_end(tmp_path):
    export = doccano_export(tmp_path, nested=False)
    out = tmp_path / "corpus.jsonl"
    cfg = corpus_config(tmp_path)
    run = subprocess.run(
        ["make", "-s", "import-annotations", f"EXPORT={export}", f"OUTPUT={out}", f"CONFIG={cfg}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert "2 unit(s) added" in run.stdout
    assert [json.loads(line)["id"] for line in out.read_text().splitlines()] == ["d1-000", "d1-001"]
    usage = subprocess.run(
        ["make", "-s", "import-annotations", f"EXPORT={export}"], cwd=ROOT, capture_output=True, text=True
    )
    assert usage.returncode == 2 and usage.stdout.startswith("usage: make import-annotations EXPORT=")
