"""Turning a (sentence, actor, target) row into model input.

Every backend sees the actor: the transformer gets a text pair (actor and target
wording; the sentence with the actor's mentions marked), the TF-IDF baseline the same
sentence with the actor's mentions replaced by a placeholder token. Two actors in one
sentence therefore get different inputs, and can get different labels.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.actors import ActorMatcher
from pipeline.config import InputFormat, TaskConfig
from pipeline.normalize import normalize_tweet

ACTOR_TOKEN = "ACTORMENTION"


class InputError(ValueError):
    """A row names an actor or target the model does not know, or misses a column."""


@dataclass(frozen=True)
class Row:
    text: str
    actor: str
    target: str


def as_rows(rows, task: TaskConfig) -> list[Row]:
    """Accept dicts, Row objects, or a pandas DataFrame with text/actor/target columns."""
    if hasattr(rows, "to_dict") and hasattr(rows, "columns"):
        missing = [c for c in ("text", "actor", "target") if c not in rows.columns]
        if missing:
            raise InputError(f"input is missing column(s) {missing}; expected text, actor, target")
        rows = rows.to_dict("records")
    out = []
    actors, targets = set(task.actor_ids), set(task.target_ids)
    for i, row in enumerate(rows):
        if isinstance(row, Row):
            r = row
        else:
            missing = [c for c in ("text", "actor", "target") if c not in row]
            if missing:
                raise InputError(f"row {i}: missing field(s) {missing}; expected text, actor, target")
            text = row["text"]
            r = Row("" if text is None else str(text), str(row["actor"]), str(row["target"]))
        if r.actor not in actors:
            raise InputError(f"row {i}: unknown actor {r.actor!r}; the model knows {sorted(actors)}")
        if r.target not in targets:
            raise InputError(f"row {i}: unknown target {r.target!r}; the model knows {sorted(targets)}")
        out.append(r)
    return out


class InputFormatter:
    """Builds model inputs for one task and input format."""

    def __init__(self, task: TaskConfig, fmt: InputFormat):
        self.task = task
        self.fmt = fmt
        self.matcher = ActorMatcher(task)

    def _replace_mentions(self, text: str, actor: str, template: str) -> str:
        out, last = [], 0
        for m in self.matcher.mentions(text):
            if m.actor != actor:
                continue
            out += [text[last : m.start], template.format(mention=m.surface)]
            last = m.end
        return "".join(out) + text[last:]

    def text(self, row: Row) -> str:
        return normalize_tweet(row.text) if self.fmt.normalize == "tweets" else row.text

    def pair(self, row: Row) -> tuple[str, str]:
        """(actor and target, marked sentence) for a cross-encoder."""
        first = self.fmt.first.format(
            actor=self.task.actor(row.actor).name, target=self.task.target(row.target).wording
        )
        text = self.text(row)
        second = text if self.fmt.mark is None else self._replace_mentions(text, row.actor, self.fmt.mark)
        return first, second

    def flat(self, row: Row) -> str:
        """One string for bag-of-words models: the sentence, the actor's mentions as a token."""
        return self._replace_mentions(self.text(row), row.actor, ACTOR_TOKEN)
