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
import datetime
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.actors import ActorMatcher
from pipeline.config import FLAT_FIELDS, Config, TaskConfig
from pipeline.segment import segment

SPLITS = ("train", "dev", "test")
RECORD_FIELDS = {"id", "text", "labels", "doc_id", "start", "end", "furniture", "split", "date", "meta"}
LABEL_FIELDS = ("actor", "target", "label")


class CorpusError(ValueError):
    """The corpus failed validation; ``issues`` holds every problem found."""

    def __init__(self, issues: list["Issue"]):
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


def _check_record(obj: Any, line: int, file: str, task: TaskConfig, issues: list[Issue]) -> Record | None:
    def bad(fld: str | None, msg: str) -> None:
        issues.append(Issue(file, line, fld, msg))

    if not isinstance(obj, dict):
        bad(None, f"expected a JSON object, found {_type_name(obj)}")
        return None
    for key in sorted(set(obj) - RECORD_FIELDS):
        bad(key, f"unknown field; expected one of {sorted(RECORD_FIELDS)}")
    ok = True
    for key, kind, required in (
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
    ):
        if key not in obj:
            if required:
                bad(key, f"missing required field (expected {kind.__name__})")
                ok = False
            continue
        value = obj[key]
        wrong_type = not isinstance(value, kind) or (kind is int and isinstance(value, bool))
        if wrong_type:
            bad(key, f"expected {kind.__name__}, found {_type_name(value)} {value!r}"[:200])
            ok = False
    if not ok:
        return None
    if not obj["id"].strip():
        bad("id", "expected a non-empty string, found ''")
    if obj.get("split") is not None and obj["split"] not in SPLITS:
        bad("split", f"expected one of {list(SPLITS)}, found {obj['split']!r}")
    if ("start" in obj) != ("end" in obj):
        bad("start" if "start" not in obj else "end", "start and end must be given together")
    elif "start" in obj and not 0 <= obj["start"] <= obj["end"]:
        bad("start", f"expected 0 <= start <= end, found start={obj['start']} end={obj['end']}")

    choices = {"actor": task.actor_ids, "target": task.target_ids, "label": task.labels}
    labels: list[Label] = []
    seen: set[tuple[str, str]] = set()
    for i, item in enumerate(obj["labels"]):
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
                obj = json.loads(text)
            except json.JSONDecodeError as exc:
                issues.append(Issue(file, line_no, None, f"not valid JSON: {exc.msg} at column {exc.colno}"))
                continue
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


def check_labels_complete(records: list[Record], task: TaskConfig, file: str) -> list[Issue]:
    """Every actor that a unit mentions or labels gets a label for every target."""
    matcher = ActorMatcher(task)
    issues = []
    for rec in records:
        if rec.furniture:
            continue
        labelled = {(lab.actor, lab.target) for lab in rec.labels}
        actors = dict.fromkeys([*(m.actor for m in matcher.mentions(rec.text)), *(lab.actor for lab in rec.labels)])
        for actor in actors:
            missing = [t for t in task.target_ids if (actor, t) not in labelled]
            if missing:
                how = "is mentioned" if actor not in {lab.actor for lab in rec.labels} else "is labelled"
                issues.append(
                    Issue(file, rec.line, "labels", f"actor {actor!r} {how} but has no label for target(s) {missing}")
                )
    return issues


def check_against_documents(records: list[Record], documents: Path, file: str) -> list[Issue]:
    """Ids, offsets and text against the articles, and coverage of every sentence."""
    issues = []
    by_doc: dict[str, list[Record]] = {}
    for rec in records:
        by_doc.setdefault(rec.doc_id, []).append(rec)
    doc_files = {p.stem: p for p in documents.glob("*.txt")}
    for doc_id, recs in by_doc.items():
        if doc_id not in doc_files:
            issues.append(
                Issue(file, recs[0].line, "doc_id", f"expected a document {documents / (doc_id + '.txt')}, none found")
            )
    for doc_id, path in sorted(doc_files.items()):
        text = path.read_text(encoding="utf-8")
        recs = {r.id: r for r in by_doc.get(doc_id, [])}
        expected = {s.id: s for s in segment(text, doc_id)}
        for sid, sent in expected.items():
            if sid not in recs:
                issues.append(
                    Issue(file, None, "id", f"sentence {sid} of {path} ({sent.text[:60]!r}) has no record")
                )
        for rec in recs.values():
            sent = expected.get(rec.id)
            if sent is None:
                issues.append(Issue(file, rec.line, "id", f"{rec.id!r} is not a sentence id of {path}"))
                continue
            if rec.start is None:
                issues.append(Issue(file, rec.line, "start", "expected character offsets into the article"))
                continue
            if (rec.start, rec.end) != (sent.start, sent.end):
                issues.append(
                    Issue(
                        file,
                        rec.line,
                        "start",
                        f"expected offsets {sent.start}-{sent.end} for {rec.id}, found {rec.start}-{rec.end}",
                    )
                )
            elif text[rec.start : rec.end] != rec.text:
                issues.append(
                    Issue(file, rec.line, "text", f"does not match {path}[{rec.start}:{rec.end}] "
                          f"(expected {text[rec.start:rec.end][:60]!r}, found {rec.text[:60]!r})")
                )
    return issues


def check_metadata(path: Path, documents: Path | None) -> list[Issue]:
    """Document metadata: a JSON list of {id, title, outlet, date (ISO or null), ...}."""
    file = str(path)
    if not path.is_file():
        return [Issue(file, None, None, "metadata file not found (data.metadata)")]
    try:
        items = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        return [Issue(file, exc.lineno, None, f"not valid JSON: {exc.msg}")]
    if not isinstance(items, list):
        return [Issue(file, None, None, f"expected a JSON list of objects, found {_type_name(items)}")]
    issues = []
    doc_ids = {p.stem for p in documents.glob("*.txt")} if documents and documents.is_dir() else None
    for i, item in enumerate(items):
        where = f"[{i}]"
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            issues.append(Issue(file, None, where, "expected an object with a string 'id'"))
            continue
        if doc_ids is not None and item["id"] not in doc_ids:
            issues.append(Issue(file, None, f"{where}.id", f"no document {item['id']}.txt in {documents}"))
        for key in ("title", "outlet", "date"):
            if item.get(key) is not None and not isinstance(item[key], str):
                issues.append(Issue(file, None, f"{where}.{key}", f"expected a string or null, found {item[key]!r}"))
        date = item.get("date")
        if isinstance(date, str):
            try:
                datetime.date.fromisoformat(date)
            except ValueError:
                issues.append(Issue(file, None, f"{where}.date", f"expected an ISO date (YYYY-MM-DD), found {date!r}"))
    return issues


def validate(config: Config) -> tuple[list[Record], list[Issue]]:
    """Every check on the configured corpus."""
    file = config.data.annotations
    records, issues = parse_corpus(file, config.task, config.data.format, config.data.fields)
    if config.data.complete_labels:
        issues += check_labels_complete(records, config.task, file)
    if config.data.documents:
        documents = Path(config.data.documents)
        if not documents.is_dir():
            issues.append(Issue(file, None, None, f"documents folder {documents} not found (data.documents)"))
        else:
            issues += check_against_documents(records, documents, file)
    if config.data.metadata:
        issues += check_metadata(
            Path(config.data.metadata), Path(config.data.documents) if config.data.documents else None
        )
    return records, issues


def load_records(config: Config) -> list[Record]:
    """Validated records; raise CorpusError listing every problem otherwise."""
    records, issues = validate(config)
    if issues:
        raise CorpusError(issues)
    return records
