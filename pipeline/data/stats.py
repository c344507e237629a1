"""Corpus statistics: label counts per target, per actor and per document."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from pipeline.config import TaskConfig
from pipeline.data.corpus import Record
from pipeline.files import write_atomic


def corpus_stats(records: list[Record], task: TaskConfig) -> dict:
    """Counts as nested dicts: by target x label, actor x label, document x label, and totals."""
    by_target = {t: Counter() for t in task.target_ids}
    by_actor = {a: Counter() for a in task.actor_ids}
    by_doc: dict[str, Counter] = {}
    units = Counter()
    for rec in records:
        units["furniture" if rec.furniture else "text"] += 1
        by_doc.setdefault(rec.doc_id, Counter())
        for lab in rec.labels:
            by_target[lab.target][lab.label] += 1
            by_actor[lab.actor][lab.label] += 1
            by_doc[rec.doc_id][lab.label] += 1

    def table(counters: dict[str, Counter]) -> dict[str, dict[str, int]]:
        return {k: {lab: c[lab] for lab in task.labels} | {"total": sum(c.values())} for k, c in counters.items()}

    total = Counter()
    for c in by_target.values():
        total.update(c)
    return {
        "units": dict(units) | {"total": sum(units.values())},
        "labels": {lab: total[lab] for lab in task.labels} | {"total": sum(total.values())},
        "by_target": table(by_target),
        "by_actor": {k: v for k, v in table(by_actor).items() if v["total"]},
        "by_document": table(by_doc),
    }


def format_stats(stats: dict, task: TaskConfig) -> str:
    """Plain-text tables of ``corpus_stats``."""
    cols = [*task.labels, "total"]
    lines = [
        f"units: {stats['units']['total']} ({stats['units'].get('furniture', 0)} page furniture); "
        f"labels: {stats['labels']['total']}"
    ]
    for title, key in (("target", "by_target"), ("actor", "by_actor"), ("document", "by_document")):
        rows = stats[key]
        width = max([len(title), *(len(k) for k in rows)])
        lines += ["", f"{title:<{width}}  " + "  ".join(f"{c:>8}" for c in cols)]
        lines += [f"{k:<{width}}  " + "  ".join(f"{v[c]:>8}" for c in cols) for k, v in rows.items()]
    lines += ["", "all".ljust(9) + "  ".join(f"{stats['labels'][c]:>8}" for c in cols)]
    return "\n".join(lines)


def write_json_atomic(obj: object, path: str | Path) -> Path:
    """Write JSON atomically (pipeline.files)."""
    return write_atomic(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")
