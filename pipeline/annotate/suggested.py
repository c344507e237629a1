"""``Suggested``: one sentence picked for annotation, as every writer (Label Studio tasks,
doccano JSONL, the corpus-schema scaffold) receives it from ``suggest``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Suggested:
    """A sentence worth annotating, with the model's view of it.

    ``record`` is a corpus-schema record (docs/configuration.md#corpus-schema-jsonl): id,
    doc_id, start, end, text, furniture (false), date (absent when unknown), labels (the
    model's label for every attributed actor on every target) and meta ({"suggest": {"rank",
    "score", "strategy", "model"}}). ``mentions`` maps each attributed actor to its
    [start, end] spans in ``record["text"]`` (empty for an actor found only as a quotation's
    speaker). ``probs`` holds the model's probabilities: actor -> target -> label -> p.
    """

    record: dict[str, Any]
    mentions: dict[str, list[list[int]]] = field(default_factory=dict)
    probs: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    via: dict[str, str] = field(default_factory=dict)  # actor -> how it was found: name, alias, pronoun, quote

    @property
    def id(self) -> str:
        return self.record["id"]

    @property
    def actors(self) -> list[str]:
        return list(dict.fromkeys(lab["actor"] for lab in self.record["labels"]))
