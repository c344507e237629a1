"""The task: who (actors) takes which position (labels) on what (targets).

Validation uses pydantic (extra keys forbidden); errors name the dotted key and the file
that set it (see loading.py).
"""

from __future__ import annotations

import datetime
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class ConfigError(ValueError):
    """A config file is missing, unreadable or invalid. The message names file and key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_id(value: str, what: str) -> str:
    if not ID_PATTERN.match(value):
        raise ValueError(
            f"{what} id must be letters, digits, '_', '.', '-' (starting with a letter or digit); found {value!r}"
        )
    return value


class DatedAlias(_Strict):
    """A title that names the actor only while they hold it ("the U.S. president" from 2025-01-20)."""

    alias: str = Field(description="the surface form, e.g. 'the German chancellor'")
    start: datetime.date | None = Field(default=None, description="first day (inclusive); null: open")
    end: datetime.date | None = Field(default=None, description="last day (inclusive); null: open")

    def holds(self, day: datetime.date) -> bool:
        return (self.start is None or self.start <= day) and (self.end is None or day <= self.end)


class Actor(_Strict):
    """Someone who can hold a stance: a person, an institution, or a tweet's author."""

    id: str = Field(description="canonical id used in annotations and outputs")
    name: str = Field(description="display name")
    aliases: list[str | DatedAlias] = Field(
        default_factory=list,
        description="surface forms that refer to the actor; a title held for a time as {alias, start, end}",
    )
    kind: Literal["person", "collective"] = "person"

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        return _check_id(v, "actor")

    @field_validator("aliases")
    @classmethod
    def _aliases(cls, v: list[str]) -> list[str]:
        for alias in v:
            if not (alias if isinstance(alias, str) else alias.alias).strip():
                raise ValueError("aliases must be non-empty strings")
        return v

    def surface_forms(self, day: datetime.date | None = None) -> list[str]:
        """The name and every alias in force on ``day`` (undated aliases always; dated ones only
        when ``day`` falls in their range), without duplicates, longest first."""
        forms = [self.name, *(a for a in self.aliases if isinstance(a, str))]
        if day is not None:
            forms += [a.alias for a in self.aliases if not isinstance(a, str) and a.holds(day)]
        return sorted({f.strip(): None for f in forms}, key=len, reverse=True)


class Target(_Strict):
    """Something an actor takes a stance on."""

    id: str
    name: str = Field(description="short name for tables and plots")
    wording: str = Field(description="the natural-language wording a model sees")

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        return _check_id(v, "target")


class TaskConfig(_Strict):
    """What is being classified: actors, targets and the label set."""

    actors: list[Actor] = Field(min_length=1)
    targets: list[Target] = Field(min_length=1)
    labels: list[str] = Field(default_factory=lambda: ["favor", "against", "none"], min_length=2)
    reference_date: datetime.date | None = Field(
        default=None,
        description="the date undated documents are read at, for dated title aliases; null: dated titles "
        "match no one in an undated document (a title is ambiguous without a date)",
    )
    none_label: str = Field(
        default="none",
        description="the label meaning 'no stance'; excluded from F_avg, given to unmentioned actors",
    )

    @model_validator(mode="after")
    def _consistent(self) -> TaskConfig:
        for what, ids in (
            ("actors", [a.id for a in self.actors]),
            ("targets", [t.id for t in self.targets]),
            ("labels", list(self.labels)),
        ):
            dupes = sorted({i for i in ids if ids.count(i) > 1})
            if dupes:
                raise ValueError(f"{what}: duplicate ids {dupes}")
        if self.none_label not in self.labels:
            raise ValueError(f"none_label {self.none_label!r} is not one of labels {self.labels}")
        return self

    @property
    def actor_ids(self) -> list[str]:
        return [a.id for a in self.actors]

    @property
    def target_ids(self) -> list[str]:
        return [t.id for t in self.targets]

    @property
    def stance_labels(self) -> list[str]:
        """Labels that express a stance (all but ``none_label``): the classes F_avg averages."""
        return [lab for lab in self.labels if lab != self.none_label]

    def label_names(self, indices) -> list[str]:
        """Label names of class indices (the one place an index becomes a name: columns follow ``labels``)."""
        return [self.labels[int(i)] for i in indices]

    def predicted(self, probs) -> list[str]:
        """The label of the highest probability in each row of an (n, k) array."""
        return self.label_names(probs.argmax(axis=-1)) if len(probs) else []

    def actor(self, actor_id: str) -> Actor:
        return next(a for a in self.actors if a.id == actor_id)

    def target(self, target_id: str) -> Target:
        return next(t for t in self.targets if t.id == target_id)


# The fields of a flat corpus line (data.format: flat); data.fields renames them.
