"""Training-set augmentations for the stance model that reads target wordings (``training:``).

* ``capped_per_target``: at most N examples per target, so that no few targets dominate;
* ``negated_examples``: the target's wording negated, favor and against swapped;
* ``unrelated_examples``: a sentence with a stance, asked about an unrelated target's wording: none.

Hand-written: no library offers these for (sentence, actor, target wording) rows; each is a few
lines over the rows the model trains on.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from pipeline.models.inputs import Row

# Negated wordings for ``training.negate_targets``: the stance on "opposing X" is the mirror of the
# stance on X. Three phrasings, so the model does not key on one prefix.
NEGATIONS = ("opposing {wording}", "rejecting {wording}", "opposition to {wording}")


def negated_examples(
    rows: list[Row], labels: list[int], names: list[str], stance: list[str], share: float, seed: int, wording
) -> tuple[list[Row], list[int]]:
    """A seeded ``share`` of (row, label) again with the target's wording negated and favor and
    against swapped; none stays none. ``wording(row)`` gives a row's target wording."""
    if not share:
        return [], []
    if len(stance) != 2:
        raise ValueError(f"training.negate_targets needs exactly two stance labels to swap; the task has {stance}")
    rng = np.random.default_rng(seed)
    swap = {names.index(stance[0]): names.index(stance[1]), names.index(stance[1]): names.index(stance[0])}
    chosen = np.flatnonzero(rng.random(len(rows)) < share)
    phrasing = rng.integers(len(NEGATIONS), size=len(chosen))
    out_rows = [
        dataclasses.replace(rows[i], wording=NEGATIONS[j].format(wording=wording(rows[i])))
        for i, j in zip(chosen, phrasing)
    ]
    return out_rows, [swap.get(labels[i], labels[i]) for i in chosen]


def capped_per_target(targets: list[str], cap: int | None, seed: int) -> list[int]:
    """Indices keeping at most ``cap`` examples of each target (a seeded sample), in their order."""
    if cap is None:
        return list(range(len(targets)))
    rng = np.random.default_rng(seed)
    by_target: dict[str, list[int]] = {}
    for i, t in enumerate(targets):
        by_target.setdefault(t, []).append(i)
    keep = [i for idx in by_target.values() for i in (idx if len(idx) <= cap else rng.choice(idx, cap, replace=False))]
    return sorted(int(i) for i in keep)


UNRELATED_MAX_COSINE = 0.3  # a wording this far from every wording labelled on the text is about something else


def unrelated_examples(
    rows: list[Row],
    labels: list[int],
    none: int,
    share: float,
    seed: int,
    wording: Callable[[Row], str],
    embed: Callable[[list[str]], np.ndarray],
) -> tuple[list[Row], list[int]]:
    """A seeded ``share`` of the stance examples again, asked about another target's wording, labelled none.

    The other wording comes from the training set's own targets: one not labelled on that text
    (the corpora label every target a text speaks of) and whose embedding (``embed``: unit
    vectors) has cosine below ``UNRELATED_MAX_COSINE`` with every wording labelled on it. A
    stance is on a target; a sentence that takes one answers none on a target it is not about."""
    if not share:
        return [], []
    pool = sorted({wording(r) for r in rows})
    vectors = embed(pool)
    index = {w: i for i, w in enumerate(pool)}
    on_text: dict[str, set[int]] = {}
    for r in rows:
        on_text.setdefault(r.text, set()).add(index[wording(r)])
    rng = np.random.default_rng(seed)
    out_rows, out_labels = [], []
    for i in np.flatnonzero(rng.random(len(rows)) < share):
        if labels[i] == none:
            continue
        labelled = sorted(on_text[rows[i].text])
        far = np.flatnonzero((vectors @ vectors[labelled].T).max(axis=1) < UNRELATED_MAX_COSINE)
        if len(far):
            out_rows.append(dataclasses.replace(rows[i], wording=pool[int(rng.choice(far))]))
            out_labels.append(none)
    return out_rows, out_labels
