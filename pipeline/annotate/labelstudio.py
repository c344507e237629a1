"""Label Studio both ways: the labelling config and the tasks to import (generated from the task
file and the suggested sentences), and the JSON export read back into corpus records.

What the reader interprets (docs/annotation.md#importing-annotations): cancelled annotations
are skipped, a task with none left is counted as unannotated; an actor ticked in ``actors``
with a target left unanswered gets the task's none label (counted); a target answered for an
actor that is not ticked is ignored (counted); annotations of one unit that disagree are
conflicts. ``Imported`` and ``Collector`` are shared with the doccano reader.
"""

from __future__ import annotations

import html
import json
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.annotate.suggested import Suggested
from pipeline.config import TaskConfig
from pipeline.data.corpus import Issue, _lookup, _type_name, json_error
from pipeline.files import write_atomic

ACTORS = "actors"  # the control where the annotator ticks the actors a sentence speaks of or for
LS_FIELDS = {f: f"data.{f}" for f in ("doc_id", "start", "end", "text", "date")} | {
    "id": "data.unit_id",
    "labels": ACTORS,
}


def control_name(actor: str, target: str) -> str:
    """The Choices control holding ``actor``'s label on ``target``."""
    return f"{actor}__{target}"


def controls(task: TaskConfig) -> dict[str, tuple[str, str]]:
    """Control name -> (actor, target), for every pair of the task; refuses ambiguous names."""
    out: dict[str, tuple[str, str]] = {}
    for a in task.actor_ids:
        for t in task.target_ids:
            name = control_name(a, t)
            if name in out:
                raise ValueError(f"actor/target ids {out[name]} and {(a, t)} give the same control name {name!r}")
            out[name] = (a, t)
    return out


def label_config(task: TaskConfig) -> str:
    """The labelling config: the sentence with its mentions highlighted, the actors to tick, and
    for each ticked actor one single-choice question per target (XML-escaped by ElementTree)."""
    controls(task)  # refuse ambiguous control names before Label Studio sees them
    view = ET.Element("View")
    ET.SubElement(view, "Header", value="$doc_id  ($unit_id)")
    ET.SubElement(view, "HyperText", name="text", value="$html")
    ET.SubElement(view, "Header", value="The model's reading (pre-filled below; correct it)", size="6")
    ET.SubElement(view, "HyperText", name="model", value="$model_html", inline="true")
    ET.SubElement(view, "Header", value="Actors this sentence speaks of or for")
    actors = ET.SubElement(view, "Choices", name=ACTORS, toName="text", choice="multiple", showInline="true")
    for actor in task.actors:
        ET.SubElement(actors, "Choice", value=actor.name, alias=actor.id)
    for actor in task.actors:
        block = ET.SubElement(view, "View", visibleWhen="choice-selected", whenTagName=ACTORS, whenChoiceValue=actor.id)
        ET.SubElement(block, "Header", value=actor.name)
        for target in task.targets:
            choices = ET.SubElement(
                block,
                "Choices",
                name=control_name(actor.id, target.id),
                toName="text",
                choice="single-radio",
                showInline="true",
            )
            ET.SubElement(choices, "Header", value=target.name)
            for label in task.labels:
                ET.SubElement(choices, "Choice", value=label)
    ET.indent(view, "  ")
    return ET.tostring(view, encoding="unicode") + "\n"


def mention_html(text: str, mentions: dict[str, list[list[int]]], names: dict[str, str]) -> str:
    """``text`` HTML-escaped, each actor's mention spans wrapped in ``<mark title="Name">``
    (a span overlapping an earlier or longer one is left unmarked)."""
    spans = sorted(
        ((s, e, actor) for actor, found in mentions.items() for s, e in found if 0 <= s < e <= len(text)),
        key=lambda x: (x[0], x[0] - x[1]),
    )
    out, pos = [], 0
    for start, end, actor in spans:
        if start < pos:
            continue
        title = html.escape(names.get(actor, actor), quote=True)
        out += [html.escape(text[pos:start]), f'<mark title="{title}">{html.escape(text[start:end])}</mark>']
        pos = end
    out.append(html.escape(text[pos:]))
    return "".join(out)


def model_html(s: Suggested, task: TaskConfig) -> str:
    """One line per actor: how attribution found it (a quotation's speaker has no span to
    highlight) and the model's label on each target with its probability, HTML-escaped."""
    actors = {a.id: a.name for a in task.actors}
    targets = {t.id: t.name for t in task.targets}
    lines = []
    for actor in s.actors:
        how = f" (found by {s.via[actor]})" if s.via.get(actor) else ""
        readings = [
            f"{targets.get(t, t)}: {label} {p:.2f}"
            for t, dist in s.probs.get(actor, {}).items()
            for label, p in [max(dist.items(), key=lambda kv: kv[1])]
        ]
        line = f"{actors.get(actor, actor)}{how}" + (": " + "; ".join(readings) if readings else "")
        lines.append(html.escape(line, quote=True))
    return "<br/>".join(lines)


def _result(name: str, choices: list[str]) -> dict[str, Any]:
    return {"from_name": name, "to_name": "text", "type": "choices", "value": {"choices": choices}}


def task_json(s: Suggested, task: TaskConfig, model: str) -> dict[str, Any]:
    """One Label Studio task: the sentence's data and the model's labels as a prediction."""
    rec = s.record
    info = rec.get("meta", {}).get("suggest", {})
    names = {a.id: a.name for a in task.actors}
    data = {
        "unit_id": rec["id"],
        "doc_id": rec.get("doc_id", rec["id"]),
        "start": rec.get("start"),
        "end": rec.get("end"),
        "date": rec.get("date"),
        "text": rec["text"],
        "html": mention_html(rec["text"], s.mentions, names),
        "model_html": model_html(s, task),
        "actors": s.actors,
        "rank": info.get("rank"),
        "score": info.get("score"),
    }
    result = [_result(ACTORS, s.actors)]
    result += [_result(control_name(lab["actor"], lab["target"]), [lab["label"]]) for lab in rec["labels"]]
    return {"data": data, "predictions": [{"model_version": model, "score": info.get("score"), "result": result}]}


def write_tasks(suggested: Sequence[Suggested], task: TaskConfig, path: str | Path, model: str) -> Path:
    """The Label Studio import file: a JSON list, one task per suggested sentence."""
    tasks = [task_json(s, task, model) for s in suggested]
    return write_atomic(path, json.dumps(tasks, ensure_ascii=False, indent=1) + "\n")


# ---------------------------------------------------------------- reading annotations back


@dataclass(frozen=True)
class Source:
    """Where a record came from in the export, for messages: ``file[:line]: place: field``."""

    place: str  # "task 17" (Label Studio) or "" (doccano: the line says it)
    line: int | None = None
    fields: dict[str, str] = field(default_factory=dict)  # record field -> the export's name for it

    def where(self, file: str) -> str:
        return f"{file}:{self.line}" if self.line is not None else f"{file} {self.place}"

    def issue(self, file: str, fld: str | None, message: str) -> Issue:
        parts = [p for p in (self.place, fld) if p]
        return Issue(file, self.line, ": ".join(parts) or None, message)


@dataclass
class Imported:
    """Corpus-schema records read from an export, with what the reader had to interpret."""

    file: str
    fmt: str
    records: list[dict[str, Any]] = field(default_factory=list)
    sources: list[Source] = field(default_factory=list)  # one per record
    read: int = 0  # tasks (Label Studio) or lines (doccano) read
    unannotated: list[str] = field(default_factory=list)  # skipped: no submitted annotation
    cancelled: int = 0  # cancelled annotations skipped
    filled: list[str] = field(default_factory=list)  # unanswered target -> the none label
    ignored: list[str] = field(default_factory=list)  # choices for an actor not ticked
    conflicts: list[str] = field(default_factory=list)  # annotations of one unit that disagree
    issues: list[Issue] = field(default_factory=list)  # the export's own problems

    def locate(self, index: int, issue: Issue) -> Issue:
        """An issue found on ``records[index]``, placed and named as in the export."""
        src = self.sources[index]
        head, dot, rest = (issue.field or "").partition(".")
        head, _, sub = head.partition("[")
        name = src.fields.get(head, head) + (f"[{sub}" if sub else "") + dot + rest
        return src.issue(self.file, name or None, issue.message)


@dataclass
class _Unit:
    base: dict[str, Any]
    source: Source
    places: list[str]
    annotations: list[tuple[str, list[tuple[str, str, str]]]] = field(default_factory=list)


class Collector:
    """Gathers the annotations of each unit (several tasks or lines may carry one unit) and turns
    them into one record each, or into conflict lines where they disagree."""

    def __init__(self, task: TaskConfig, out: Imported):
        self.task, self.out = task, out
        self.units: dict[str, _Unit] = {}

    def add(self, base: dict, source: Source, who: str, labels: list[tuple[str, str, str]]) -> None:
        """One annotation (``who`` names it) of the unit ``base`` (record fields but labels)."""
        key = base["id"] if isinstance(base.get("id"), str) else f"\0{source.place}{source.line}"
        unit = self.units.setdefault(key, _Unit(base, source, []))
        place = source.place or f"line {source.line}"
        if place not in unit.places:
            unit.places.append(place)
            for fld in ("text", "doc_id", "start", "end", "date"):
                if base.get(fld) != unit.base.get(fld):
                    self.out.conflicts.append(
                        f"{self.out.file}: unit {key}: {source.fields.get(fld, fld)} differs: "
                        f"{unit.base.get(fld)!r} in {unit.places[0]}, {base.get(fld)!r} in {place}"
                    )
        unit.annotations.append((who, labels))

    def finish(self) -> Imported:
        order = {a: i for i, a in enumerate(self.task.actor_ids)}
        torder = {t: i for i, t in enumerate(self.task.target_ids)}
        for key, unit in self.units.items():
            labels = self._agreed(key, unit)
            labels.sort(key=lambda lab: (order[lab["actor"]], torder[lab["target"]]))
            self.out.records.append({**unit.base, "labels": labels})
            self.out.sources.append(unit.source)
        return self.out

    def _agreed(self, key: str, unit: _Unit) -> list[dict[str, str]]:
        pairs = dict.fromkeys((a, t) for _, labels in unit.annotations for a, t, _ in labels)
        agreed = []
        for a, t in pairs:
            seen: dict[str | None, list[str]] = {}
            for who, labels in unit.annotations:
                for value in dict.fromkeys([lab for x, y, lab in labels if (x, y) == (a, t)] or [None]):
                    seen.setdefault(value, []).append(who)
            if len(seen) == 1:
                agreed.append({"actor": a, "target": t, "label": next(iter(seen))})
                continue
            found = "; ".join(
                f"{'no label' if v is None else repr(v)} in {', '.join(dict.fromkeys(w))}" for v, w in seen.items()
            )
            self.out.conflicts.append(f"{self.out.file}: unit {key}: actor {a!r}, target {t!r}: {found}")
        return agreed


def fill_none(task: TaskConfig, actors: list[str], chosen: dict[tuple[str, str], str], where: str, out: Imported):
    """The labels of the ticked ``actors``: chosen, or the none label for a target left unanswered
    (counted); a choice for an actor not ticked is ignored (counted)."""
    labels = []
    for a in actors:
        for t in task.target_ids:
            if (a, t) not in chosen:
                out.filled.append(f"{where}: actor {a!r}, target {t!r} unanswered: set to {task.none_label!r}")
            labels.append((a, t, chosen.get((a, t), task.none_label)))
    for (a, t), label in chosen.items():
        if a not in actors:
            out.ignored.append(f"{where}: actor {a!r}, target {t!r} = {label!r} ignored: {a!r} is not ticked")
    return labels


def read_export(path: str | Path, task: TaskConfig) -> Imported:
    """Label Studio's JSON export (a list of tasks with ``data`` and ``annotations``) as corpus
    records; problems, conflicts and what was interpreted are in the result, nothing is raised."""
    out = Imported(str(path), "labelstudio")
    try:
        tasks = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        out.issues.append(Issue(out.file, None, None, "export file not found"))
        return out
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        why = json_error(exc) if isinstance(exc, json.JSONDecodeError) else "not UTF-8"
        out.issues.append(Issue(out.file, getattr(exc, "lineno", None), None, why))
        return out
    if not isinstance(tasks, list) or not all(isinstance(t, dict) and "data" in t for t in tasks):
        out.issues.append(
            Issue(
                out.file,
                None,
                None,
                f"expected Label Studio's JSON export (a list of tasks with 'data' and "
                f"'annotations'; not JSON-MIN or CSV), found {_type_name(tasks)}",
            )
        )
        return out
    collector = Collector(task, out)
    for i, item in enumerate(tasks):
        _read_task(item, i, task, collector)
    return collector.finish()


def _read_task(item: dict, index: int, task: TaskConfig, collector: Collector) -> None:
    out = collector.out
    out.read += 1
    source = Source(f"task {item.get('id', f'[{index}]')}", None, LS_FIELDS)
    data = item["data"] if isinstance(item["data"], dict) else {}
    annotations = [a for a in item.get("annotations") or [] if isinstance(a, dict)]
    kept = [a for a in annotations if not a.get("was_cancelled")]
    out.cancelled += len(annotations) - len(kept)
    if not kept:
        out.unannotated.append(f"{source.place}: unit {data.get('unit_id')!r}")
        return
    base = {
        "id": data.get("unit_id"),
        "doc_id": data.get("doc_id"),
        "start": data.get("start"),
        "end": data.get("end"),
        "text": data.get("text"),
        "furniture": False,
        "date": data.get("date"),
        "meta": {"imported": {"from": "labelstudio", "file": Path(out.file).name, "task": item.get("id")}},
    }
    base = {k: v for k, v in base.items() if v is not None}
    for ann in kept:
        who = f"{source.place} annotation {ann.get('id', '?')}"
        labels = _read_annotation(ann, task, who, out)
        if labels is not None:
            collector.add(base, source, who, labels)


def _read_annotation(ann: dict, task: TaskConfig, who: str, out: Imported) -> list[tuple[str, str, str]] | None:
    """The (actor, target, label) triples of one submitted annotation; None when it has problems."""
    names = {a.name.casefold(): a.id for a in task.actors}
    pairs = controls(task)
    before = len(out.issues)

    def bad(fld: str, message: str) -> None:
        out.issues.append(Issue(out.file, None, f"{who}: {fld}", message))

    ticked: list[str] = []
    chosen: dict[tuple[str, str], str] = {}
    for item in ann.get("result") or []:
        name = item.get("from_name") if isinstance(item, dict) else None
        values = (item.get("value") or {}).get("choices") if isinstance(item, dict) else None
        if name != ACTORS and name not in pairs:
            bad("result", f"expected a choice from {ACTORS!r} or an <actor>__<target> control, found {name!r}")
        elif not isinstance(values, list):
            bad(name, f"expected a list of choices, found {_type_name(values)}")
        elif name == ACTORS:
            for value in values:
                actor = _lookup(value, task.actor_ids, names)
                if actor is None:
                    bad(name, f"expected an actor id or name of {task.actor_ids}, found {value!r}")
                elif actor not in ticked:
                    ticked.append(actor)
        elif len(values) > 1:
            bad(name, f"expected one label, found {values}")
        elif values:
            label = _lookup(values[0], list(task.labels), {})
            if label is None:
                bad(name, f"expected one of {task.labels}, found {values[0]!r}")
            else:
                chosen[pairs[name]] = label
    if len(out.issues) > before:
        return None
    return fill_none(task, ticked, chosen, who, out)
