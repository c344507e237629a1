"""The annotated corpus: reading, validating and flattening the JSONL schema.

One JSON object per line, one line per text unit (a sentence of an article, a tweet):

    id         str, required, unique          the unit's id ("<doc_id>-<index:03d>" for articles)
    text       str, required                  the unit's text
    labels     list, required (may be empty)  [{"actor": ..., "target": ..., "label": ...}]
    doc_id     str, optional (default: id)    the document it belongs to; splits group by it
    start/end  int, optional                  character offsets into <documents>/<doc_id>.txt
    furniture  bool, optional (default false) page furniture: kept, never labelled
    split      str, optional                  "train", "dev" or "test": a predefined split
    date       str, optional                  ISO date of the document
    meta       object, optional               anything else, carried along untouched

Actor, target and label values must be ids from the task config. Errors name the
file, the line, the field, what was expected and what was found.

``data.format: flat`` reads what stance benchmarks ship instead: one JSON object per
line and per (text, actor, target, label), fields renamed through ``data.fields``
(e.g. ``{label: stance}``); other keys are ignored. ``actor`` may be left out when the
task has one actor; actor and target may be given by id or by name (any case), the
label by its id in any case. Each line becomes a record with one label.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.config import FLAT_FIELDS, TaskConfig

SPLITS = ("train", "dev", "test")
RECORD_FIELDS = {"id", "text", "labels", "doc_id", "start", "end", "furniture", "split", "date", "meta"}
LABEL_FIELDS = ("actor", "target", "label")


class CorpusError(ValueError):
    """The corpus failed validation; ``issues`` holds every problem found."""

    def __init__(self, issues: list[Issue]):
        self.issues = issues
        shown = "\n  ".join(str(i) for i in issues[:50])
        more = f"\n  ... and {len(issues) - 50} more" if len(issues) > 50 else ""
        super().__init__(f"{len(issues)} problem(s) in the corpus:\n  {shown}{more}")


@dataclass(frozen=True)
class Issue:
    file: str
    line: int | None
    field: str | None
    message: str

    def __str__(self) -> str:
        where = self.file + (f":{self.line}" if self.line is not None else "")
        return f"{where}: {self.field + ': ' if self.field else ''}{self.message}"


def json_error(exc: json.JSONDecodeError) -> str:
    """The parser's reason and column, "at" said once (some reasons end in it: "Invalid control character at")."""
    at = "" if exc.msg.endswith(" at") else " at"
    return f"not valid JSON: {exc.msg}{at} column {exc.colno}"


@dataclass(frozen=True)
class Label:
    actor: str
    target: str
    label: str


@dataclass(frozen=True)
class Record:
    id: str
    text: str
    labels: tuple[Label, ...]
    doc_id: str
    line: int
    start: int | None = None
    end: int | None = None
    furniture: bool = False
    split: str | None = None
    date: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


FIELD_TYPES = (
    ("id", str, True),
    ("text", str, True),
    ("labels", list, True),
    ("doc_id", str, False),
    ("start", int, False),
    ("end", int, False),
    ("furniture", bool, False),
    ("split", str, False),
    ("date", str, False),
    ("meta", dict, False),
)


def _check_fields(obj: dict, bad) -> bool:
    """Field names, types and values of one record; False when it cannot be read further."""
    for key in sorted(set(obj) - RECORD_FIELDS):
        bad(key, f"unknown field; expected one of {sorted(RECORD_FIELDS)}")
    ok = True
    for key, kind, required in FIELD_TYPES:
        if key not in obj:
            if required:
                bad(key, f"missing required field (expected {kind.__name__})")
                ok = False
            continue
        value = obj[key]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            bad(key, f"expected {kind.__name__}, found {_type_name(value)} {value!r}"[:200])
            ok = False
    if not ok:
        return False
    if not obj["id"].strip():
        bad("id", "expected a non-empty string, found ''")
    if obj.get("split") is not None and obj["split"] not in SPLITS:
        bad("split", f"expected one of {list(SPLITS)}, found {obj['split']!r}")
    if ("start" in obj) != ("end" in obj):
        bad("start" if "start" not in obj else "end", "start and end must be given together")
    elif "start" in obj and not 0 <= obj["start"] <= obj["end"]:
        bad("start", f"expected 0 <= start <= end, found start={obj['start']} end={obj['end']}")
    return True


def _check_labels(items: list, task: TaskConfig, bad) -> list[Label]:
    """The record's labels: ids from the task, no (actor, target) twice."""
    choices = {"actor": task.actor_ids, "target": task.target_ids, "label": task.labels}
    labels: list[Label] = []
    seen: set[tuple[str, str]] = set()
    for i, item in enumerate(items):
        where = f"labels[{i}]"
        if not isinstance(item, dict):
            bad(where, f"expected an object with {list(LABEL_FIELDS)}, found {_type_name(item)}")
            continue
        extra = sorted(set(item) - set(LABEL_FIELDS))
        if extra:
            bad(where, f"unknown keys {extra}; expected exactly {list(LABEL_FIELDS)}")
        valid = True
        for key in LABEL_FIELDS:
            if key not in item:
                bad(f"{where}.{key}", "missing")
                valid = False
            elif item[key] not in choices[key]:
                bad(f"{where}.{key}", f"expected one of {choices[key]}, found {item[key]!r}")
                valid = False
        if not valid:
            continue
        pair = (item["actor"], item["target"])
        if pair in seen:
            bad(where, f"duplicate label for actor {pair[0]!r} and target {pair[1]!r}")
            continue
        seen.add(pair)
        labels.append(Label(item["actor"], item["target"], item["label"]))
    return labels


def _check_record(obj: Any, line: int, file: str, task: TaskConfig, issues: list[Issue]) -> Record | None:
    def bad(fld: str | None, msg: str) -> None:
        issues.append(Issue(file, line, fld, msg))

    if not isinstance(obj, dict):
        bad(None, f"expected a JSON object, found {_type_name(obj)}")
        return None
    if not _check_fields(obj, bad):
        return None
    labels = _check_labels(obj["labels"], task, bad)
    if obj.get("furniture") and labels:
        bad("labels", f"page furniture is never labelled; expected [], found {len(labels)} label(s)")
    return Record(
        id=obj["id"],
        text=obj["text"],
        labels=tuple(labels),
        doc_id=obj.get("doc_id", obj["id"]),
        line=line,
        start=obj.get("start"),
        end=obj.get("end"),
        furniture=obj.get("furniture", False),
        split=obj.get("split"),
        date=obj.get("date"),
        meta=obj.get("meta", {}),
    )


def _lookup(value: Any, ids: list[str], names: dict[str, str]) -> str | None:
    """The task id that ``value`` names: an id as is, or an id or name in any case."""
    if not isinstance(value, str):
        return None
    if value in ids:
        return value
    folded = value.strip().casefold()
    return next((i for i in ids if i.casefold() == folded), None) or names.get(folded)


class FlatReader:
    """Turns one flat benchmark line into the record shape ``_check_record`` validates."""

    def __init__(self, task: TaskConfig, fields: dict[str, str] | None = None):
        self.task = task
        self.key = {f: (fields or {}).get(f, f) for f in FLAT_FIELDS}
        self.actors = (task.actor_ids, {a.name.casefold(): a.id for a in task.actors})
        self.targets = (task.target_ids, {t.name.casefold(): t.id for t in task.targets})
        self.labels = (list(task.labels), {})

    def __call__(self, obj: Any, line: int, file: str, issues: list[Issue]) -> dict | None:
        if not isinstance(obj, dict):
            issues.append(Issue(file, line, None, f"expected a JSON object, found {_type_name(obj)}"))
            return None
        key = self.key
        out: dict[str, Any] = {}
        for fld in ("id", "text", "split", "doc_id"):
            if key[fld] in obj:
                out[fld] = obj[key[fld]]
        if key["actor"] not in obj and len(self.task.actors) == 1:
            obj = {**obj, key["actor"]: self.task.actor_ids[0]}
        label: dict[str, str] = {}
        ok = True
        for fld, (ids, names) in (("actor", self.actors), ("target", self.targets), ("label", self.labels)):
            if key[fld] not in obj:
                issues.append(Issue(file, line, key[fld], f"missing required field ({fld})"))
                ok = False
                continue
            found = _lookup(obj[key[fld]], ids, names)
            if found is None:
                how = "any case" if fld == "label" else "or a name"
                issues.append(Issue(file, line, key[fld], f"expected one of {ids} ({how}), found {obj[key[fld]]!r}"))
                ok = False
            label[fld] = found
        if not ok:
            return None
        return out | {"labels": [label]}

    def renamed(self, issue: Issue) -> Issue:
        """An issue about a record field, naming the field as the flat file calls it."""
        return dataclasses.replace(issue, field=self.key.get(issue.field, issue.field))


def json_lines(path: Path, issues: list[Issue]) -> Iterator[tuple[int, Any]]:
    """(line number, parsed JSON) for each non-blank line of a JSONL file; a line that is not
    UTF-8 or not JSON becomes an issue naming the file and line, and is skipped."""
    file = str(path)
    with path.open("rb") as fh:
        for line_no, raw in enumerate(fh, start=1):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                issues.append(Issue(file, line_no, None, f"not UTF-8 (byte {exc.start} of the line)"))
                continue
            if not text.strip():
                continue
            try:
                yield line_no, json.loads(text)
            except json.JSONDecodeError as exc:
                issues.append(Issue(file, line_no, None, json_error(exc)))


def parse_corpus(
    path: str | Path, task: TaskConfig, fmt: str = "records", fields: dict[str, str] | None = None
) -> tuple[list[Record], list[Issue]]:
    """Read a JSONL corpus; return the records that parsed and every issue found.

    ``fmt`` is ``records`` (the schema above) or ``flat`` (one label per line; ``fields``
    maps field names to the file's keys).
    """
    flat = FlatReader(task, fields) if fmt == "flat" else None
    path = Path(path)
    file = str(path)
    if not path.is_file():
        return [], [Issue(file, None, None, "corpus file not found")]
    records: list[Record] = []
    issues: list[Issue] = []
    first_line: dict[str, int] = {}
    for line_no, obj in json_lines(path, issues):
        if flat is not None:
            obj = flat(obj, line_no, file, issues)
            if obj is None:
                continue
        before = len(issues)
        record = _check_record(obj, line_no, file, task, issues)
        if flat is not None:
            issues[before:] = [flat.renamed(i) for i in issues[before:]]  # the file's field names
        if record is None:
            continue
        if record.id in first_line:
            issues.append(
                Issue(file, line_no, "id", f"duplicate id {record.id!r} (first on line {first_line[record.id]})")
            )
            continue
        first_line[record.id] = line_no
        records.append(record)
    if not records and not issues:
        issues.append(Issue(file, None, None, "the corpus is empty; expected one JSON object per line"))
    with_split = [r for r in records if r.split is not None]
    if with_split and len(with_split) != len(records):
        missing = next(r for r in records if r.split is None)
        issues.append(
            Issue(file, missing.line, "split", "some records have a split and this one has none; give all or none")
        )
    return records, issues
