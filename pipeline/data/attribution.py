"""Who a sentence speaks for: document-level attribution of actors to sentences.

A sentence refers to an actor when (``via``):

* ``name``: the actor's display name, or a part of it used as an alias ("Macron");
* ``alias``: any other alias: a title ("the French president", dated titles by the
  document's date), a metonym ("the Elysee", "Kyiv"), a spokesman;
* ``pronoun``: "he"/"she" as the subject of the sentence ("He said ...", "He also warned")
  or of a speech verb anywhere ("..., she added."), resolved to the last *speaker* before it:
  the person actor that spoke in the nearest preceding sentence that had one (the actor
  whose mention is followed by a speech verb, else the first person mentioned);
  "They", "Both leaders" at the start of a sentence naming no actor refer to every actor of
  the sentence before, when it named two or more;
* ``quote``: a sentence that is a quotation naming no actor, spoken by the speaker of the
  sentence before when that one quoted or was attributed ("“...,” Zelensky said." then
  "“We are not ready ...”"), else by the speaker the next sentence names right after the
  quote ("“...” The words were Merz's." / "“...,” Merz said." as the next unit).

Only actors of the task are attributed; a pronoun with no person actor before it in the
last ``LOOKBACK`` sentences is left alone. The rule is the same in the corpus tools
(``to_examples``) and in ``make predict``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from pipeline.config import TaskConfig
from pipeline.data.actors import ActorMatcher, Mention

LOOKBACK = 3
SPEECH = (
    r"said|says|added|adds|told|tells|stressed|insisted|argued|warned|noted|acknowledged|reiterated|"
    r"declared|wrote|urged|called|demanded|rejected|suggested|asked|replied|explained|continued|"
    r"concluded|claimed|signaled|signalled|stated|announced|vowed|pledged|repeated|emphasized|emphasised|"
    r"underlined|cautioned|predicted|conceded|admitted|accused|dismissed|ruled|refused|proposed"
)
_PRONOUN = re.compile(
    rf"(?:^\W*(?P<lead>he|she)\b)|(?<!\w)(?P<verb>he|she)(?=\s+(?:\w+ly\s+|also\s+|then\s+|later\s+|again\s+)?(?:{SPEECH})\b)",
    re.IGNORECASE,
)
_PLURAL = re.compile(r"^\W*(?P<plural>they|both(?: leaders| men| sides)?|the (?:two|three) leaders)\b", re.IGNORECASE)
_SPEECH_WORD = re.compile(rf"\b(?:{SPEECH})\b", re.IGNORECASE)
_AFTER_SPEECH = re.compile(rf"^[\s,’'\"”]*(?:\w+\s+){{0,2}}?(?:{SPEECH})\b", re.IGNORECASE)
_OWNER = re.compile(
    r"\b(?:words?|line|remarks?|comments?|verdict|warning|message|quote)\s+(?:was|were|came)\s+(?:from\s+)?$",
    re.IGNORECASE,
)
_QUOTE_OPEN = re.compile(r"^\W{0,3}[“\"‘«]")
_QUOTE_CHARS = '“”"«»'


@dataclass(frozen=True)
class Reference:
    """An actor referred to in a sentence: how, and where (character spans; empty for a quote)."""

    actor: str
    via: str
    spans: tuple[tuple[int, int], ...] = field(default=())


def _via(mention: Mention, task: TaskConfig) -> str:
    """``name``: the display name, or part of a person's name ("Macron"); else ``alias``."""
    actor = task.actor(mention.actor)
    name = actor.name.lower()
    surface = re.sub(r"['’]s$", "", mention.surface.strip()).lower()
    return "name" if surface == name or (actor.kind == "person" and surface in name.split()) else "alias"


def _speaker(text: str, mentions: list[Mention], task: TaskConfig, person: bool = False) -> str | None:
    """The actor who speaks in ``text``: the mention nearest before the first speech verb ("Putin
    said", "Putin also told"), or right after it ("said Putin"); else the first mention."""
    candidates = [m for m in mentions if not person or task.actor(m.actor).kind == "person"]
    for verb in _SPEECH_WORD.finditer(text):
        before = [m for m in candidates if m.end <= verb.start() and verb.start() - m.end <= 25]
        if before:
            return before[-1].actor
        after = [m for m in candidates if m.start >= verb.end() and m.start - verb.end() <= 3]
        if after:
            return after[0].actor
    return candidates[0].actor if candidates else None


def is_quote(text: str) -> bool:
    return bool(_QUOTE_OPEN.match(text))


def attribute(texts: list[str], task: TaskConfig, matcher: ActorMatcher | None = None) -> list[list[Reference]]:
    """The actors each sentence of one document refers to, in document order (see the module doc)."""
    matcher = matcher or ActorMatcher(task)
    mentions = [matcher.mentions(t) for t in texts]
    out: list[list[Reference]] = []
    speakers: list[str | None] = []  # who speaks in each sentence, for the sentences after it
    person_speakers: list[str | None] = []
    for i, text in enumerate(texts):
        refs: dict[str, Reference] = {}
        for m in mentions[i]:
            old = refs.get(m.actor)
            spans = (*(old.spans if old else ()), (m.start, m.end))
            refs[m.actor] = Reference(m.actor, old.via if old else _via(m, task), spans)
        speaker = _speaker(text, mentions[i], task)
        person = _speaker(text, mentions[i], task, person=True)
        pronoun = _PRONOUN.search(text)
        antecedent = next((s for s in reversed(person_speakers[max(0, i - LOOKBACK) :]) if s), None)
        if pronoun and antecedent and (pronoun.group("lead") or not person):
            span = pronoun.span("lead") if pronoun.group("lead") else pronoun.span("verb")
            if antecedent not in refs:
                refs[antecedent] = Reference(antecedent, "pronoun", (span,))
            speaker = person = antecedent
        elif not mentions[i] and (plural := _PLURAL.match(text)):
            group = next(
                (
                    list(dict.fromkeys(m.actor for m in mentions[j]))
                    for j in range(i - 1, max(-1, i - 2), -1)
                    if len({m.actor for m in mentions[j]}) >= 2
                ),
                [],
            )
            for actor in group:
                refs[actor] = Reference(actor, "pronoun", (plural.span("plural"),))
        elif not mentions[i] and is_quote(text):
            quoted = _quote_speaker(i, texts, mentions, speakers, task)
            if quoted:
                refs[quoted] = Reference(quoted, "quote")
                speaker = quoted
                person = quoted if task.actor(quoted).kind == "person" else None
        out.append(list(refs.values()))
        speakers.append(speaker)
        person_speakers.append(person)
    return out


def _quote_speaker(
    i: int, texts: list[str], mentions: list[list[Mention]], speakers: list[str | None], task: TaskConfig
) -> str | None:
    """The speaker of a quotation that names no actor: the previous sentence's, when it quoted or
    was itself attributed; else the one the next sentence names next to a speech verb."""
    if i > 0 and speakers[i - 1] and (any(c in texts[i - 1] for c in _QUOTE_CHARS) or not mentions[i - 1]):
        return speakers[i - 1]
    if i + 1 < len(texts) and mentions[i + 1]:
        nxt = texts[i + 1]
        for m in mentions[i + 1]:
            spoke = _AFTER_SPEECH.match(nxt[m.end : m.end + 40])  # "Merz said it on Monday."
            owned = _OWNER.search(nxt[max(0, m.start - 40) : m.start])  # "The words were Merz's."
            if m.start < 60 and (spoke or owned):
                return m.actor
    return None
