"""Checking a corpus as configured: labels complete, offsets against the articles, metadata;
loading the validated records of the main corpus and of the extra training corpora."""

from __future__ import annotations

import datetime
import json
from pathlib import Path

from pipeline.config import Config, TaskConfig, load_task
from pipeline.data.actors import DatedMatchers
from pipeline.data.corpus import CorpusError, Issue, Record, _type_name, json_error, parse_corpus
from pipeline.data.segment import segment


def check_labels_complete(records: list[Record], task: TaskConfig, file: str) -> list[Issue]:
    """Every actor that a unit mentions or labels gets a label for every target."""
    matchers = DatedMatchers(task)  # title aliases match by the record's date
    issues = []
    for rec in records:
        if rec.furniture:
            continue
        matcher = matchers(rec.date)
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
                issues.append(Issue(file, None, "id", f"sentence {sid} of {path} ({sent.text[:60]!r}) has no record"))
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
                    Issue(
                        file,
                        rec.line,
                        "text",
                        f"does not match {path}[{rec.start}:{rec.end}] "
                        f"(expected {text[rec.start : rec.end][:60]!r}, found {rec.text[:60]!r})",
                    )
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
        return [Issue(file, exc.lineno, None, json_error(exc))]
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
    if not Path(file).is_file():
        return [], issues  # one line: every check below would only repeat it
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
    for extra in config.data.extra_train:  # each with its own task; their records are not returned
        issues += _extra_corpus(extra, config)[1]
    return records, issues


def load_records(config: Config) -> list[Record]:
    """Validated records; raise CorpusError listing every problem otherwise."""
    records, issues = validate(config)
    if issues:
        raise CorpusError(issues)
    return records


def _extra_corpus(extra, config: Config) -> tuple[list[Record], list[Issue], TaskConfig | None]:
    """Parse one extra training corpus with its own task; its labels must be the main task's."""
    try:
        task = load_task(extra.task)
    except ValueError as exc:
        return [], [Issue(extra.task, None, None, str(exc))], None
    if list(task.labels) != list(config.task.labels) or task.none_label != config.task.none_label:
        found = f"{task.labels} (none: {task.none_label})"
        expected = f"the main task's labels {config.task.labels} (none: {config.task.none_label})"
        return [], [Issue(extra.task, None, "labels", f"expected {expected}, found {found}")], task
    records, issues = parse_corpus(extra.annotations, task)
    return records, issues, task


def load_extra_corpora(config: Config) -> list[tuple[str, list[Record], TaskConfig]]:
    """The extra training corpora (``data.extra_train``): name, validated records, and own task."""
    out = []
    for extra in config.data.extra_train:
        records, issues, task = _extra_corpus(extra, config)
        if issues:
            raise CorpusError(issues)
        out.append((extra.name or Path(extra.annotations).stem, records, task))
    return out
