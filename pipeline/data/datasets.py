"""From validated records to ``datasets.DatasetDict`` splits grouped by document.

One example is one (unit, actor, target) label. Splits and folds are made over groups
(``data.group_by``, the document by default), stratified on the label as far as the
groups allow (scikit-learn's StratifiedGroupKFold), and seeded, so a document never
sits in two splits and the same seed gives the same split.
"""

from __future__ import annotations

import numpy as np
from datasets import ClassLabel, Dataset, DatasetDict, Features, Sequence, Value
from sklearn.model_selection import StratifiedGroupKFold

from pipeline.config import Config, TaskConfig
from pipeline.data.actors import DatedMatchers
from pipeline.data.attribution import attribute
from pipeline.data.corpus import Record
from pipeline.data.validate import load_extra_corpora, load_records


class SplitError(ValueError):
    """The corpus cannot be split as configured (too few groups, say)."""


def features(task: TaskConfig) -> Features:
    return Features(
        {
            "id": Value("string"),
            "unit_id": Value("string"),
            "doc_id": Value("string"),
            "text": Value("string"),
            "actor": Value("string"),
            "actor_name": Value("string"),
            "target": Value("string"),
            "target_text": Value("string"),
            "label": ClassLabel(names=list(task.labels)),
            "spans": Sequence(Sequence(Value("int32"))),
        }
    )


def references(records: list[Record], task: TaskConfig) -> dict[tuple[str, str], list[list[int]]]:
    """(unit id, actor) -> where the unit refers to the actor, by document-level attribution
    (pipeline/data/attribution.py), as ``make predict`` finds it."""
    docs: dict[str, list[Record]] = {}
    for rec in records:
        if not rec.furniture:
            docs.setdefault(rec.doc_id, []).append(rec)
    out: dict[tuple[str, str], list[list[int]]] = {}
    matchers = DatedMatchers(task)
    for units in docs.values():
        date = units[0].date
        matcher = matchers(date)
        for rec, refs in zip(units, attribute([u.text for u in units], task, matcher)):
            for ref in refs:
                out[(rec.id, ref.actor)] = [list(span) for span in ref.spans]
    return out


def to_examples(
    records: list[Record], task: TaskConfig, group_by: str = "doc_id", labels: list[str] | None = None
) -> list[dict]:
    """Flatten records to one example per label; furniture carries none.

    ``group_by`` ("doc_id" or "id") names the record field whose value groups examples.
    ``spans`` says where the unit refers to the actor (empty: attributed without a mention, as
    a quote's speaker; None: not found); ``labels`` (default the task's) orders the label index.
    """
    label_index = {lab: i for i, lab in enumerate(labels or task.labels)}
    refs = references(records, task)
    rows = []
    for rec in records:
        for lab in rec.labels:
            rows.append(
                {
                    "id": f"{rec.id}|{lab.actor}|{lab.target}",
                    "unit_id": rec.id,
                    "doc_id": rec.doc_id,
                    "text": rec.text,
                    "actor": lab.actor,
                    "actor_name": task.actor(lab.actor).name,
                    "target": lab.target,
                    "target_text": task.target(lab.target).wording,
                    "label": label_index[lab.label],
                    "spans": refs.get((rec.id, lab.actor)),  # None: attribution did not find the actor
                    "_split": rec.split,
                    "_group": getattr(rec, group_by),
                }
            )
    return rows


def extra_examples(config: Config) -> list[dict]:
    """Examples of the extra training corpora (``data.extra_train``), each read with its own task."""
    rows = []
    for name, records, task in load_extra_corpora(config):
        for row in to_examples(records, task, "doc_id", list(config.task.labels)):
            rows.append(row | {"_split": "train", "_group": f"{name}:{row['_group']}"})
    return rows


def _group_split(rows: list[dict], share: float, seed: int, what: str) -> tuple[list[dict], list[dict]]:
    """Hold out about ``share`` of the groups (one fold of a stratified grouped k-fold)."""
    groups = np.array([r["_group"] for r in rows])
    n_groups = len(set(groups.tolist()))
    n_splits = max(2, round(1 / share))
    if n_groups < n_splits:
        raise SplitError(
            f"cannot hold out {share:.0%} of the groups for {what}: {n_groups} group(s) found, "
            f"at least {n_splits} needed (lower the share, or group by 'id' in data.group_by)"
        )
    y = np.array([r["label"] for r in rows])
    splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    keep, held = next(splitter.split(np.zeros(len(rows)), y, groups))
    return [rows[i] for i in keep], [rows[i] for i in held]


def to_dataset(rows: list[dict], task: TaskConfig) -> Dataset:
    cols = {name: [r[name] for r in rows] for name in features(task)}
    return Dataset.from_dict(cols, features=features(task))


def _finish(parts: dict[str, list[dict]], task: TaskConfig) -> DatasetDict:
    return DatasetDict({name: to_dataset(rows, task) for name, rows in parts.items()})


def split_examples(rows: list[dict], config: Config, extra: list[dict] | None = None) -> DatasetDict:
    """Train/dev/test: the records' own ``split`` when given, else grouped and seeded; ``extra``
    examples (the extra training corpora) join train only."""
    extra = extra or []
    data = config.data
    predefined = any(r["_split"] for r in rows)
    if predefined:
        parts = {s: [r for r in rows if r["_split"] == s] for s in ("train", "dev", "test")}
        if not parts["train"]:
            raise SplitError("the corpus has a predefined split but no 'train' records")
    else:
        rest, test = _group_split(rows, data.test_size, data.seed, "test")
        parts = {"train": rest, "dev": [], "test": test}
    if not parts["dev"] and data.dev_size > 0:
        parts["train"], parts["dev"] = _group_split(parts["train"], data.dev_size, data.seed, "dev")
    parts["train"] = parts["train"] + extra
    return _finish({k: v for k, v in parts.items() if v or k != "dev"}, config.task)


def build_dataset(config: Config, records: list[Record] | None = None) -> DatasetDict:
    """The configured corpus, validated and split: ``train``, ``dev`` (if any), ``test``."""
    records = load_records(config) if records is None else records
    return split_examples(to_examples(records, config.task, config.data.group_by), config, extra_examples(config))


def cross_validation_folds(config: Config, records: list[Record] | None = None) -> list[DatasetDict]:
    """Grouped, stratified, seeded k folds; each is a DatasetDict with train, dev and test.

    With a predefined split, the folds are made over the non-test records only.
    """
    records = load_records(config) if records is None else records
    rows = [r for r in to_examples(records, config.task, config.data.group_by) if r["_split"] != "test"]
    groups = np.array([r["_group"] for r in rows])
    k = config.data.n_folds
    if len(set(groups.tolist())) < k:
        raise SplitError(f"{k} folds need at least {k} groups; {len(set(groups.tolist()))} found (data.n_folds)")
    y = np.array([r["label"] for r in rows])
    splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=config.data.seed)
    extra = extra_examples(config)
    folds = []
    for train_idx, test_idx in splitter.split(np.zeros(len(rows)), y, groups):
        train = [rows[i] for i in train_idx]
        parts = {"train": train, "test": [rows[i] for i in test_idx]}
        if config.data.dev_size > 0:
            parts["train"], parts["dev"] = _group_split(train, config.data.dev_size, config.data.seed, "dev")
        parts["train"] = parts["train"] + extra  # extra corpora: train only, never dev or test
        folds.append(_finish(parts, config.task))
    return folds
