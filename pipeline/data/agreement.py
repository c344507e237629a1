"""Inter-annotator agreement between two annotation files of the same units."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from sklearn.metrics import cohen_kappa_score

from pipeline.config import TaskConfig
from pipeline.data.corpus import CorpusError, Record, parse_corpus


@dataclass
class Agreement:
    n_items: int
    observed: float
    kappa: float
    kappa_by_target: dict[str, float]
    furniture_disagreements: list[str]
    disagreements: list[tuple[str, str, str, str, str]]  # unit, actor, target, label A, label B
    stance_items: int = 0  # items either annotator labelled with a stance (not the none label)
    stance_agreed: int = 0  # of those, the ones both labelled the same


def agreement(a: list[Record], b: list[Record], task: TaskConfig) -> Agreement:
    """Cohen's kappa over every (unit, actor, target) that either file labels.

    A pair one annotator left out counts as ``none_label`` for that annotator; units
    either annotator marked as furniture are left out (their disagreement is listed).
    """
    ra, rb = {r.id: r for r in a}, {r.id: r for r in b}
    if set(ra) != set(rb):
        only = sorted(set(ra) ^ set(rb))[:5]
        raise ValueError(f"the two files cover different units (e.g. {only})")
    furniture = sorted(i for i in ra if ra[i].furniture != rb[i].furniture)
    items: dict[tuple[str, str, str], list[str]] = {}
    for side, recs in ((0, ra), (1, rb)):
        for uid, rec in recs.items():
            if ra[uid].furniture or rb[uid].furniture:
                continue
            for lab in rec.labels:
                items.setdefault((uid, lab.actor, lab.target), [task.none_label, task.none_label])[side] = lab.label
    keys = sorted(items)
    ya = [items[k][0] for k in keys]
    yb = [items[k][1] for k in keys]
    by_target = {}
    for t in task.target_ids:
        idx = [i for i, k in enumerate(keys) if k[2] == t]
        ta, tb = [ya[i] for i in idx], [yb[i] for i in idx]
        if len(set(ta) | set(tb)) > 1:  # kappa is undefined (0/0) when both gave one same label throughout
            by_target[t] = float(cohen_kappa_score(ta, tb))
    stance = [i for i in range(len(keys)) if ya[i] != task.none_label or yb[i] != task.none_label]
    return Agreement(
        n_items=len(keys),
        observed=sum(x == y for x, y in zip(ya, yb)) / max(len(keys), 1),
        kappa=float(cohen_kappa_score(ya, yb)) if keys else float("nan"),
        kappa_by_target=by_target,
        furniture_disagreements=furniture,
        disagreements=[(*k, x, y) for k, x, y in zip(keys, ya, yb) if x != y],
        stance_items=len(stance),
        stance_agreed=sum(ya[i] == yb[i] for i in stance),
    )


def agreement_files(path_a: str, path_b: str, task: TaskConfig) -> Agreement:
    recs = []
    for path in (path_a, path_b):
        records, issues = parse_corpus(path, task)
        if issues:
            raise CorpusError(issues)
        recs.append(records)
    return agreement(recs[0], recs[1], task)


def format_agreement(result: Agreement) -> str:
    lines = [
        f"items: {result.n_items}  observed agreement: {result.observed:.3f}  Cohen's kappa: {result.kappa:.3f}",
        "kappa by target: " + ", ".join(f"{t} {k:.3f}" for t, k in result.kappa_by_target.items()),
        f"items either annotator labelled with a stance: {result.stance_items}, of which {result.stance_agreed} "
        f"agreed ({result.stance_agreed / max(result.stance_items, 1):.2f})",
        f"furniture disagreements: {len(result.furniture_disagreements)}",
        f"label disagreements: {len(result.disagreements)}",
    ]
    counts = Counter((x, y) for *_, x, y in result.disagreements)
    lines += [f"  A={x} B={y}: {n}" for (x, y), n in counts.most_common()]
    lines += [f"  {u} {a} {t}: A={x} B={y}" for u, a, t, x, y in result.disagreements]
    return "\n".join(lines)
