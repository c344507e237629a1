"""Turning a (sentence, actor, target) row into model input: the one input path of every door.

Every backend sees the actor: the transformer gets a text pair (actor name and target
wording; the sentence with the actor's mentions marked), the TF-IDF baseline the sentence
with the actor's mentions replaced by a placeholder token. Two actors in one sentence
therefore get different inputs, and can get different labels.

A row may carry what the model's own task cannot know: the actor's display name and the
target's wording (rows of an extra training corpus with its own task), and the spans where
the actor is referred to (found by document-level attribution: a pronoun, a quote's
speaker). Without spans, the actor's aliases are matched in the text.

Long sentences (``window``): when an input is longer than the model takes, the sentence is
cut at word boundaries to the largest window, centred on the actor's first mention, that
fits; the row is flagged ``truncated``. Without it the tokenizer would cut the end off, and
with it perhaps the mention.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace

from pipeline.config import InputFormat, TaskConfig
from pipeline.data.actors import ActorMatcher
from pipeline.data.normalize import normalize_tweet

ACTOR_TOKEN = "ACTORMENTION"
Span = tuple[int, int]


class InputError(ValueError):
    """A row names an actor or target the model does not know, or misses a column."""


@dataclass(frozen=True)
class Row:
    text: str
    actor: str
    target: str
    actor_name: str | None = None  # display name, where the model's task does not know the actor
    wording: str | None = None  # target wording, where the model's task does not know the target
    spans: tuple[Span, ...] | None = None  # where the actor is referred to; None: match its aliases
    truncated: bool = False  # the text is a window of the sentence (see ``window``)
    prepared: bool = False  # the model's input preparation has run on it


def rows_of(dataset) -> list[Row]:
    """Rows of a datasets.Dataset (pipeline.data.datasets): names, wordings and spans included."""
    cols = dataset.column_names
    n = len(dataset)
    names = dataset["actor_name"] if "actor_name" in cols else [None] * n
    wordings = dataset["target_text"] if "target_text" in cols else [None] * n
    spans = dataset["spans"] if "spans" in cols else [None] * n
    return [
        Row(t, a, g, name, wording, None if s is None else tuple(tuple(x) for x in s))
        for t, a, g, name, wording, s in zip(
            dataset["text"], dataset["actor"], dataset["target"], names, wordings, spans
        )
    ]


def _shown(value) -> str:
    if value is None or (isinstance(value, float) and value != value):  # JSON null; NaN in a DataFrame
        return "null"
    return f"{type(value).__name__} {value!r}"[:80]


def as_rows(rows, task: TaskConfig, formatter: InputFormatter | None = None) -> list[Row]:
    """Accept Row objects, dicts, or a pandas DataFrame with text/actor/target columns.

    An actor or target outside the task is an error unless the row brings its name or wording.
    """
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
            for field in ("text", "actor", "target"):
                if not isinstance(row[field], str):
                    raise InputError(f"row {i}: field {field!r} must be a string, found {_shown(row[field])}")
            r = Row(row["text"], row["actor"], row["target"])
        if r.actor not in actors and r.actor_name is None:
            raise InputError(f"row {i}: unknown actor {r.actor!r}; the model knows {sorted(actors)}")
        if r.target not in targets and r.wording is None:
            raise InputError(f"row {i}: unknown target {r.target!r}; the model knows {sorted(targets)}")
        out.append(r)
    return out


def window(text: str, span: Span | None, fits: Callable[[str, int], bool]) -> tuple[str, int]:
    """The largest word window of ``text`` around ``span`` for which ``fits(window, offset)`` holds, and its offset.

    ``text`` itself (offset 0) when it fits. A window of only the mention is returned even if it
    does not fit (the tokenizer then truncates it).
    """
    if fits(text, 0):
        return text, 0
    words = [m.span() for m in re.finditer(r"\S+", text)]
    if not words:
        return text, 0
    span = span or words[0]
    first = next((i for i, (s, e) in enumerate(words) if e > span[0]), 0)
    last = max((i for i, (s, e) in enumerate(words) if s < span[1]), default=first)
    core = last - first + 1

    def cut(size: int) -> tuple[str, int]:
        lo = max(0, min(first - (size - core) // 2, len(words) - size))
        return text[words[lo][0] : words[lo + size - 1][1]], words[lo][0]

    if not fits(*cut(core)):
        return cut(core)
    lo, hi = core, len(words)  # binary search: a wider window is a superset of a narrower one
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if fits(*cut(mid)) else (lo, mid - 1)
    return cut(lo)


class InputFormatter:
    """Builds model inputs for one task and input format."""

    def __init__(self, task: TaskConfig, fmt: InputFormat):
        self.task = task
        self.fmt = fmt
        self.matcher = ActorMatcher(task)

    def actor_name(self, row: Row) -> str:
        return row.actor_name or self.task.actor(row.actor).name

    def wording(self, row: Row) -> str:
        return row.wording or self.task.target(row.target).wording

    def spans(self, row: Row) -> list[Span]:
        """Where the row's actor is referred to: the row's own spans, else its alias matches."""
        if row.spans is not None:
            return list(row.spans)
        return [(m.start, m.end) for m in self.matcher.mentions(row.text) if m.actor == row.actor]

    def _mark(self, row: Row, template: str) -> str:
        out, last = [], 0
        for start, end in sorted(self.spans(row)):
            if start < last or end > len(row.text):
                continue
            out += [row.text[last:start], template.format(mention=row.text[start:end])]
            last = end
        text = "".join(out) + row.text[last:]
        return normalize_tweet(text) if self.fmt.normalize == "tweets" else text

    def first(self, row: Row) -> str:
        return self.fmt.first.format(actor=self.actor_name(row), target=self.wording(row))

    def pair(self, row: Row) -> tuple[str, str]:
        """(actor and target, marked sentence) for a cross-encoder."""
        if self.fmt.mark is None:
            return self.first(row), normalize_tweet(row.text) if self.fmt.normalize == "tweets" else row.text
        return self.first(row), self._mark(row, self.fmt.mark)

    def flat(self, row: Row) -> str:
        """One string for bag-of-words models: the sentence, the actor's mentions as a token."""
        return self._mark(row, ACTOR_TOKEN)

    def windowed(self, row: Row, fits: Callable[[Row], bool]) -> Row:
        """``row`` cut to the largest window around the actor's first mention that ``fits``."""
        spans = sorted(self.spans(row))

        def cut(text: str, offset: int) -> Row:
            inside = tuple((s - offset, e - offset) for s, e in spans if s >= offset and e <= offset + len(text))
            # An actor nothing referred to stays so (spans None), for gating to see it.
            return replace(row, text=text, spans=inside if (inside or row.spans is not None) else None)

        text, offset = window(row.text, spans[0] if spans else None, lambda t, o: fits(cut(t, o)))
        if offset == 0 and text == row.text:
            return replace(row, prepared=True)
        return replace(cut(text, offset), truncated=True, prepared=True)
