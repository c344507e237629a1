"""doccano both ways (text classification, JSONL): one sentence per line, its labels as
``"<actor>:<target>:<label>"`` strings, the unit's fields as extra keys (doccano keeps them as
metadata; its export gives them back at the top level or under ``meta``).

Read back as Label Studio's export is (``labelstudio.Collector``): an actor with a label on some
targets gets the none label on the others (counted); a line with no label is skipped as
unannotated; lines of one unit, or labels of one (actor, target), that disagree are conflicts.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pipeline.annotate.labelstudio import Collector, Imported, Source, fill_none
from pipeline.annotate.suggested import Suggested
from pipeline.config import TaskConfig
from pipeline.data.corpus import Issue, _lookup, _type_name, json_lines
from pipeline.files import write_atomic

UNIT_FIELDS = ("unit_id", "doc_id", "start", "end", "date")
LABEL_SEP = ":"


def check_ids(task: TaskConfig) -> None:
    """Label strings are ``actor:target:label``: an id with a colon would be read back wrong."""
    bad = [i for i in (*task.actor_ids, *task.target_ids, *task.labels) if LABEL_SEP in i]
    if bad:
        raise ValueError(f"doccano labels are '<actor>:<target>:<label>': expected ids without ':', found {bad}")


def label_string(actor: str, target: str, label: str) -> str:
    return LABEL_SEP.join((actor, target, label))


def write_jsonl(suggested: Sequence[Suggested], task: TaskConfig, path: str | Path) -> Path:
    """doccano's import file: ``label`` empty, the model's labels in ``model_labels`` (metadata
    the annotator sees). doccano would import a ``label`` column as annotations by the uploading
    user, and its export returns every line: the model's guesses on lines nobody touched would
    come back as gold. Left empty, an untouched line comes back empty and is skipped."""
    check_ids(task)
    lines = []
    for s in suggested:
        rec = s.record
        line = {
            "text": rec["text"],
            "label": [],
            "model_labels": [label_string(lab["actor"], lab["target"], lab["label"]) for lab in rec["labels"]],
            "unit_id": rec["id"],
            "doc_id": rec.get("doc_id", rec["id"]),
            "start": rec.get("start"),
            "end": rec.get("end"),
            "date": rec.get("date"),
        }
        lines.append(json.dumps(line, ensure_ascii=False))
    return write_atomic(path, "".join(f"{line}\n" for line in lines))


def read_jsonl(path: str | Path, task: TaskConfig) -> Imported:
    """doccano's JSONL export as corpus records; problems, conflicts and what was interpreted are
    in the result, nothing is raised."""
    out = Imported(str(path), "doccano")
    path = Path(path)
    if not path.is_file():
        out.issues.append(Issue(out.file, None, None, "export file not found"))
        return out
    collector = Collector(task, out)
    for line_no, obj in json_lines(path, out.issues):
        _read_line(obj, line_no, task, collector)
    return collector.finish()


def _read_line(obj: Any, line_no: int, task: TaskConfig, collector: Collector) -> None:
    out = collector.out
    out.read += 1
    if not isinstance(obj, dict):
        out.issues.append(Issue(out.file, line_no, None, f"expected a JSON object, found {_type_name(obj)}"))
        return
    meta = obj["meta"] if isinstance(obj.get("meta"), dict) else {}
    at = {key: key if key in obj or key not in meta else f"meta.{key}" for key in UNIT_FIELDS}
    value = {key: obj.get(key, meta.get(key)) for key in UNIT_FIELDS}
    fields = {"id": at["unit_id"], "doc_id": at["doc_id"], "start": at["start"], "end": at["end"]}
    source = Source("", line_no, fields | {"date": at["date"], "labels": "label"})
    labels = _read_labels(obj.get("label"), task, source, out)
    if labels is None:
        return
    if not labels:
        out.unannotated.append(f"line {line_no}: unit {value['unit_id']!r}")
        return
    base = {
        "id": value["unit_id"],
        "doc_id": value["doc_id"],
        "start": value["start"],
        "end": value["end"],
        "text": obj.get("text"),
        "furniture": False,
        "date": value["date"],
        "meta": {"imported": {"from": "doccano", "file": Path(out.file).name, "line": line_no}},
    }
    collector.add({k: v for k, v in base.items() if v is not None}, source, f"line {line_no}", labels)


def _read_labels(items: Any, task: TaskConfig, source: Source, out: Imported) -> list[tuple[str, str, str]] | None:
    """The line's labels with the none label filled in; None when they have problems."""
    if items is None:
        items = []
    if not isinstance(items, list):
        out.issues.append(source.issue(out.file, "label", f"expected a list of strings, found {_type_name(items)}"))
        return None
    choices = (("actor", task.actor_ids), ("target", task.target_ids), ("label", list(task.labels)))
    chosen: dict[tuple[str, str], str] = {}
    extra: list[tuple[str, str, str]] = []  # a second, different label for one pair: a conflict
    ok = True
    for i, item in enumerate(items):
        parts = item.split(LABEL_SEP, 2) if isinstance(item, str) else []
        found = [_lookup(p, ids, {}) for p, (_, ids) in zip(parts, choices)]
        if len(parts) != 3 or None in found:
            wrong = [
                f"{what} {p!r} is not one of {ids}" for p, f, (what, ids) in zip(parts, found, choices) if f is None
            ]
            why = f" ({'; '.join(wrong)})" if len(parts) == 3 else ""
            out.issues.append(
                source.issue(out.file, f"label[{i}]", f"expected '<actor>:<target>:<label>', found {item!r}{why}")
            )
            ok = False
            continue
        actor, target, label = found
        if chosen.setdefault((actor, target), label) != label:
            extra.append((actor, target, label))
    if not ok:
        return None
    actors = list(dict.fromkeys(a for a, _ in chosen))
    where = f"line {source.line}"
    return fill_none(task, actors, chosen, where, out) + extra
