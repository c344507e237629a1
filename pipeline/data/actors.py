"""Finding actor mentions in text from the aliases in the task config.

Matching is case-insensitive on whole words, tolerant of curly apostrophes and of
line breaks inside an alias, and sees through possessives ("Macron's"). Where
aliases overlap, the longest wins ("the French president" over "president").
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass

from pipeline.config import TaskConfig


@dataclass(frozen=True)
class Mention:
    actor: str
    start: int
    end: int
    surface: str


def _alias_pattern(alias: str) -> str:
    parts = []
    for ch in alias.strip():
        if ch.isspace():
            parts.append(r"\s+")
        elif ch in "'’":
            parts.append("['’]")
        else:
            parts.append(re.escape(ch))
    # Collapse runs of \s+ produced by repeated spaces.
    return re.sub(r"(\\s\+)+", r"\\s+", "".join(parts))


def _day(date: str | datetime.date | None) -> datetime.date | None:
    """A date from an ISO date or datetime string (its first 10 characters); None if absent or unreadable."""
    if date is None or isinstance(date, datetime.date):
        return date
    try:
        return datetime.date.fromisoformat(str(date)[:10])
    except ValueError:
        return None


class ActorMatcher:
    """Finds the configured actors in a text."""

    def __init__(self, task: TaskConfig, date: str | datetime.date | None = None):
        """``date``: the document's date (ISO string or date), for title aliases held for a time;
        undated documents are read at the task's ``reference_date``."""
        day = _day(date) or task.reference_date
        forms: list[tuple[str, str]] = []
        for actor in task.actors:
            forms.extend((form, actor.id) for form in actor.surface_forms(day))
        forms.sort(key=lambda f: len(f[0]), reverse=True)
        self._actor_of = {}
        alternatives = []
        for i, (form, actor_id) in enumerate(forms):
            group = f"a{i}"
            self._actor_of[group] = actor_id
            alternatives.append(f"(?P<{group}>{_alias_pattern(form)})")
        self._regex = re.compile(r"(?<!\w)(?:" + "|".join(alternatives) + r")(?!\w)", re.IGNORECASE)

    def mentions(self, text: str) -> list[Mention]:
        """Every non-overlapping mention, left to right (longest alias first at a position)."""
        out = []
        for match in self._regex.finditer(text):
            out.append(Mention(self._actor_of[match.lastgroup], match.start(), match.end(), match.group(0)))
        return out

    def actors_in(self, text: str) -> list[str]:
        """Ids of the actors mentioned, in order of first mention, without repeats."""
        return list(dict.fromkeys(m.actor for m in self.mentions(text)))


class DatedMatchers:
    """The task's matcher at each document date, built once per date (title aliases depend on it)."""

    def __init__(self, task: TaskConfig):
        self.task = task
        self._by_date: dict[str | datetime.date | None, ActorMatcher] = {}

    def __call__(self, date: str | datetime.date | None) -> ActorMatcher:
        if date not in self._by_date:
            self._by_date[date] = ActorMatcher(self.task, date)
        return self._by_date[date]
