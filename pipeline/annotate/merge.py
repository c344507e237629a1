"""Annotations exported from Label Studio or doccano into a corpus file.

The imported records are checked as ``make validate`` checks a corpus (the corpus parser's record
checks; complete labels when ``data.complete_labels``), each problem naming the export file, the
task (or line), the field, what was expected and what was found. They are merged into the corpus
by unit id: a new unit is appended, a known one gains the (actor, target) labels it lacked, and a
label that differs from the corpus's for the same (unit, actor, target) is a conflict. Any problem
or conflict refuses the import with one line each and writes nothing; otherwise the corpus is
replaced atomically, its other lines byte for byte as they were.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.annotate import doccano, labelstudio
from pipeline.annotate.labelstudio import Imported
from pipeline.config import TaskConfig
from pipeline.data.corpus import Issue, Record, _check_record, parse_corpus
from pipeline.data.validate import check_labels_complete
from pipeline.files import atomic_file, check_writable

READERS = {"labelstudio": labelstudio.read_export, "doccano": doccano.read_jsonl}
EXTENSIONS = {".json": "labelstudio", ".jsonl": "doccano"}
FORMAT_NAMES = {"labelstudio": "Label Studio JSON", "doccano": "doccano JSONL"}
SHOWN = 20  # interpreted cases printed one per line; the rest are counted


class ImportRefused(ValueError):
    """The import was refused and nothing written; ``lines`` holds every problem or conflict."""

    def __init__(self, lines: list[str], headline: str):
        self.lines = lines
        super().__init__(headline)


def guess_format(path: str | Path, fmt: str | None = None) -> str:
    """``fmt`` if given, else the format the file's extension says (.json: Label Studio, .jsonl: doccano)."""
    if fmt is not None:
        if fmt not in READERS:
            raise ImportRefused([], f"unknown format {fmt!r}; expected one of {sorted(READERS)}")
        return fmt
    found = EXTENSIONS.get(Path(path).suffix.lower())
    if found is None:
        raise ImportRefused(
            [],
            f"cannot tell the format of {path} from its extension {Path(path).suffix!r} (expected .json for "
            "Label Studio, .jsonl for doccano); pass --format labelstudio|doccano (make: FORMAT=...)",
        )
    return found


def check_imported(imp: Imported, task: TaskConfig, complete_labels: bool = True) -> list[Issue]:
    """The export's own problems, then each record through the corpus checks, placed in the export."""
    issues = list(imp.issues)
    records: list[Record] = []
    for index, obj in enumerate(imp.records):
        found: list[Issue] = []
        record = _check_record(obj, index, imp.file, task, found)  # line = the record's index
        issues += [imp.locate(index, issue) for issue in found]
        if record is not None:
            records.append(record)
    if complete_labels:
        issues += [imp.locate(i.line, i) for i in check_labels_complete(records, task, imp.file)]
    return issues


@dataclass
class Summary:
    """What an import read, interpreted and wrote."""

    imported: Imported
    output: str
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    total: int = 0
    written: bool = False
    notes: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        imp = self.imported
        lines = [
            f"{imp.file} ({FORMAT_NAMES[imp.fmt]}): {imp.read} {'task' if imp.fmt == 'labelstudio' else 'line'}(s) "
            f"read, {len(imp.records)} unit(s) imported, {len(imp.unannotated)} skipped as unannotated "
            f"({imp.cancelled} cancelled annotation(s) left out)"
        ]
        for what, items in (
            ("unanswered target(s) set to the none label", imp.filled),
            ("choice(s) ignored for actors not ticked", imp.ignored),
            ("skipped as unannotated", imp.unannotated),
        ):
            if items:
                lines.append(f"  {len(items)} {what}:")
                lines += [f"    {item}" for item in items[:SHOWN]]
                lines += [f"    ... and {len(items) - SHOWN} more"] if len(items) > SHOWN else []
        if self.written:
            lines.append(
                f"{self.output}: {self.added} unit(s) added, {self.updated} updated, {self.unchanged} "
                f"already there unchanged; {self.total} units now"
            )
        else:
            lines.append(f"{self.output}: nothing written ({'; '.join(self.notes)})")
        return "\n".join(lines)


def _merge_one(existing: Record, obj: dict[str, Any], where: str, output: str) -> tuple[list[dict], list[str]]:
    """The labels ``obj`` adds to a unit already in the corpus, and its conflicts with it."""
    conflicts = []
    head = f"{output}:{existing.line}: unit {existing.id}"
    for fld in ("text", "doc_id", "start", "end", "date"):
        ours = getattr(existing, fld)
        if fld == "doc_id" and ours == existing.id:
            continue  # no doc_id on the corpus line: Record falls back to the unit id
        if fld in obj and ours is not None and obj[fld] != ours:
            conflicts.append(f"{head}: {fld} is {ours!r} in the corpus, {obj[fld]!r} in {where}")
    known = {(lab.actor, lab.target): lab.label for lab in existing.labels}
    for actor in sorted({a for a, _ in known} - {lab["actor"] for lab in obj["labels"]}):
        conflicts.append(f"{head}: actor {actor!r} is labelled in the corpus, not in {where}")
    new = []
    for lab in obj["labels"]:
        ours = known.get((lab["actor"], lab["target"]))
        if ours is None:
            new.append(lab)
        elif ours != lab["label"]:
            conflicts.append(
                f"{head}: actor {lab['actor']!r}, target {lab['target']!r}: {ours!r} in the corpus, "
                f"{lab['label']!r} in {where}"
            )
    return new, conflicts


def _read_corpus(path: Path, task: TaskConfig, complete_labels: bool) -> tuple[list[bytes], list[Record]]:
    """The corpus's lines as they are, and its records (checked as ``make validate`` does)."""
    if not path.exists():
        return [], []
    records, issues = parse_corpus(path, task)
    if complete_labels:
        issues += check_labels_complete(records, task, str(path))
    if issues:
        raise ImportRefused([str(i) for i in issues], f"{len(issues)} problem(s) in the corpus {path}; fix it first")
    lines = path.read_bytes().split(b"\n")  # as parse_corpus counts lines
    return (lines[:-1] if lines and lines[-1] == b"" else lines), records


def merge(
    output: Path, imp: Imported, task: TaskConfig, summary: Summary, complete_labels: bool, split: str | None = None
) -> list[bytes]:
    """The corpus's lines with the imported records merged in (new units get ``split`` when
    given); ImportRefused on a conflict."""
    lines, records = _read_corpus(output, task, complete_labels)
    if split is None and any(r.split for r in records):
        raise ImportRefused(
            [],
            f"{output}: its records have a split (train, dev, test) and imported units have none; "
            "say which split they join with --split train|dev|test (make: SPLIT=train); nothing written",
        )
    by_id = {r.id: r for r in records}
    conflicts: list[str] = []
    appended = []
    for obj, source in zip(imp.records, imp.sources):
        existing = by_id.get(obj["id"])
        if existing is None:
            obj = obj | ({"split": split} if split else {})
            appended.append(json.dumps(obj, ensure_ascii=False).encode("utf-8"))
            summary.added += 1
            continue
        new, found = _merge_one(existing, obj, source.where(imp.file), str(output))
        conflicts += found
        if new and not found:
            line = json.loads(lines[existing.line - 1])
            line["labels"] = [*line["labels"], *new]
            lines[existing.line - 1] = json.dumps(line, ensure_ascii=False).encode("utf-8")
            summary.updated += 1
        elif not new:
            summary.unchanged += 1
    if conflicts:
        raise ImportRefused(conflicts, f"{len(conflicts)} conflicting label(s) with {output}; nothing written")
    summary.total = len(records) + summary.added
    return lines + appended


def _check_written(output: Path, task: TaskConfig, complete_labels: bool):
    """The finished temporary file, checked again before it replaces ``output`` (named as ``output``)."""

    def check(tmp: Path) -> None:
        records, issues = parse_corpus(tmp, task)
        if complete_labels:
            issues += check_labels_complete(records, task, str(tmp))
        if issues:
            shown = [str(dataclasses.replace(i, file=str(output))) for i in issues]
            raise ImportRefused(shown, f"{len(issues)} problem(s) in the merged corpus; {output} left as it was")

    return check


def import_annotations(
    export: str | Path,
    output: str | Path,
    task: TaskConfig,
    fmt: str | None = None,
    complete_labels: bool = True,
    split: str | None = None,
) -> Summary:
    """Read an export, check it, merge it into ``output`` and write that atomically.

    Raises ImportRefused (every problem or conflict, one line each) and writes nothing then.
    """
    fmt = guess_format(export, fmt)
    output = check_writable(output, "corpus")
    imp = READERS[fmt](export, task)
    summary = Summary(imp, str(output))
    issues = check_imported(imp, task, complete_labels)
    if issues:
        raise ImportRefused([str(i) for i in issues], f"{len(issues)} problem(s) in {export}; nothing written")
    if imp.conflicts:
        raise ImportRefused(imp.conflicts, f"{len(imp.conflicts)} disagreement(s) in {export}; nothing written")
    if not imp.records:
        summary.notes.append(f"no annotated unit in {export}")
        return summary
    lines = merge(output, imp, task, summary, complete_labels, split)
    with atomic_file(output, "wb", check=_check_written(output, task, complete_labels)) as fh:
        fh.write(b"".join(line + b"\n" for line in lines))
    summary.written = True
    return summary
