"""Does annotating where the model is unsure pay off? A simulated active-learning run on an
annotated corpus, the gold labels standing in for the annotator.

Grouped k-fold over documents (``data.n_folds``, ``data.group_by``), as ``make cv``. In each
fold the held-out documents are the test set and the sentences of the other documents are the
pool. The first model trains on the extra training corpora alone (``data.extra_train``: the
synthetic corpus), with no sentence of the corpus. Then, step by step to each size in
``sizes`` (cumulative: 20, 40, 80), the sentences are added

* by a strategy: the current model scores the pool's (sentence, actor, target) pairs, found by
  the same attribution as ``make predict``, and the sentences are picked as ``make suggest``
  picks them (pipeline/annotate/select.py), or
* at random, from the same pool (sentences with an attributed actor), over several seeds,

with all their gold labels, and the model is retrained from scratch on the extra corpora plus
the sentences picked so far. Every point is the pooled F_avg of all folds' test predictions.
The parent MLflow run holds one metric per curve with the size as its step, and the plot.
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import time
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from pipeline.annotate.select import DEFAULT_DIVERSITY, diverse_top, pair_scores
from pipeline.config import Config
from pipeline.data.corpus import Label
from pipeline.data.datasets import extra_examples, references, to_dataset, to_examples
from pipeline.data.validate import load_records
from pipeline.metrics import f_avg
from pipeline.models.inputs import rows_of
from pipeline.models.registry import build_model

DEFAULT_SIZES = (20, 40, 80)


@dataclass
class Curve:
    """Pooled F_avg after each size, for one strategy (or one random seed)."""

    name: str
    f_avg: dict[int, float] = field(default_factory=dict)


@dataclass
class _Fold:
    test: list[dict]  # gold examples of the held-out documents
    pool: list[str]  # ids of the other documents' sentences with an attributed actor
    y_true: list[str] = field(default_factory=list)


def _folds(config: Config, records, rows: list[dict], candidates: dict[str, list[dict]]) -> list[_Fold]:
    from sklearn.model_selection import GroupKFold

    group_of = {r.id: getattr(r, config.data.group_by) for r in records}
    units = [r.id for r in records]
    groups = [group_of[u] for u in units]
    folds = []
    for train_idx, test_idx in GroupKFold(n_splits=config.data.n_folds).split(units, groups=groups):
        test_units = {units[i] for i in test_idx}
        pool = [units[i] for i in train_idx if units[i] in candidates]
        test = [r for r in rows if r["unit_id"] in test_units]
        folds.append(_Fold(test, pool, config.task.label_names([r["label"] for r in test])))
    return folds


def _candidate_rows(config: Config, records) -> dict[str, list[dict]]:
    """Unit id -> its (actor, target) rows as ``make predict`` would form them: the attributed
    actors only, each on every target, flattened by ``to_examples`` (the label is a placeholder
    the model never sees)."""
    task = config.task
    actors: dict[str, list[str]] = defaultdict(list)
    for unit, actor in references(records, task):
        actors[unit].append(actor)
    asked = [  # every record, so that attribution sees each document whole, as before
        dataclasses.replace(
            r, labels=tuple(Label(a, t, task.none_label) for a in actors[r.id] for t in task.target_ids)
        )
        for r in records
    ]
    out: dict[str, list[dict]] = defaultdict(list)
    for row in to_examples(asked, task, config.data.group_by):
        out[row["unit_id"]].append(row)
    return dict(out)


class Simulation:
    """One simulated run: ``run(strategy)`` and ``run_random(seed)`` give a ``Curve``."""

    def __init__(
        self, config: Config, sizes=DEFAULT_SIZES, diversity: float = DEFAULT_DIVERSITY, warm_epochs: int | None = None
    ):
        self.config = config
        self.warm_epochs = warm_epochs
        self.sizes = tuple(sorted(sizes))
        self.diversity = diversity
        records = [r for r in load_records(config) if not r.furniture and r.split != "test"]
        self.rows = to_examples(records, config.task, config.data.group_by)
        self.by_unit: dict[str, list[dict]] = defaultdict(list)
        for row in self.rows:
            self.by_unit[row["unit_id"]].append(row)
        self.text = {r.id: r.text for r in records}
        self.candidates = _candidate_rows(config, records)
        self.extra = extra_examples(config)
        self.folds = _folds(config, records, self.rows, self.candidates)
        self.trainings = 0
        self._base = None

    def _train(self, units: list[str]):
        """From scratch on the extra corpora and ``units``; with ``warm_epochs``, the base model
        fine-tuned further on ``units`` alone for that many epochs (far cheaper on a CPU)."""
        rows = [row for u in units for row in self.by_unit.get(u, [])]
        self.trainings += 1
        if self.warm_epochs and units:
            model = copy.deepcopy(self.base_model())
            if "warm_start" not in inspect.signature(model.fit).parameters:
                raise ValueError(f"warm start: the {type(model).__name__} cannot go on from fitted weights")
            model.training = model.training.model_copy(update={"epochs": self.warm_epochs})
            model.fit(to_dataset(rows, self.config.task), None, warm_start=True)
            return model
        model = build_model(self.config)
        model.fit(to_dataset(self.extra + rows, self.config.task), None)
        return model

    def _predict(self, model, rows: list[dict]) -> np.ndarray:
        return model.predict_proba(rows_of(to_dataset(rows, self.config.task))) if rows else np.zeros((0, 0))

    def _pooled(self, y_pred: list[list[str]]) -> float:
        y_true = [y for fold in self.folds for y in fold.y_true]
        return f_avg(y_true, [y for part in y_pred for y in part], self.config.task.stance_labels)

    def base_model(self):
        """The model of no annotated sentence: the extra corpora alone (the same in every fold)."""
        if self._base is None:
            self._base = self._train([])
        return self._base

    def _pick(self, model, pool: list[str], k: int, strategy: str) -> list[str]:
        rows = [row for u in pool for row in self.candidates[u]]
        scores = pair_scores([self._predict(model, rows)], strategy)
        best: dict[str, float] = {}
        for row, s in zip(rows, scores):
            best[row["unit_id"]] = max(best.get(row["unit_id"], 0.0), float(s))
        order = diverse_top(np.array([best[u] for u in pool]), [self.text[u] for u in pool], k, self.diversity)
        return [pool[i] for i in order]

    def _curve(self, name: str, choose) -> Curve:
        """``choose(fold_index, model, pool, k)``: the next k units of the fold's pool."""
        task = self.config.task
        curve = Curve(name)
        base = self.base_model()
        curve.f_avg[0] = self._pooled([task.predicted(self._predict(base, f.test)) for f in self.folds])
        picked: list[list[str]] = [[] for _ in self.folds]
        models = [base] * len(self.folds)
        for size in self.sizes:
            preds = []
            for i, fold in enumerate(self.folds):
                done = set(picked[i])
                pool = [u for u in fold.pool if u not in done]
                picked[i] += choose(i, models[i], pool, min(size - len(picked[i]), len(pool)))
                models[i] = self._train(picked[i])
                preds.append(task.predicted(self._predict(models[i], fold.test)))
            curve.f_avg[size] = self._pooled(preds)
        return curve

    def run(self, strategy: str) -> Curve:
        return self._curve(strategy, lambda i, model, pool, k: self._pick(model, pool, k, strategy))

    def run_random(self, seed: int) -> Curve:
        orders = [list(np.random.default_rng([seed, i]).permutation(f.pool)) for i, f in enumerate(self.folds)]
        return self._curve(f"random-{seed}", lambda i, model, pool, k: [u for u in orders[i] if u in pool][:k])


def needed(curve: Curve, target: float) -> int | None:
    """The fewest annotated sentences (a size above 0) at which ``curve`` reaches ``target``
    (None: never). The model of no sentence is left out: when it already beats ``target``,
    annotating did harm, which the curves show."""
    return next((size for size, f in sorted(curve.f_avg.items()) if size > 0 and f >= target - 1e-12), None)


def simulate(
    config: Config, strategies=("margin",), seeds=(0, 1, 2), sizes=DEFAULT_SIZES, diversity=None, warm_epochs=None
) -> dict:
    """Every curve, the random mean and std per size, and the sentences each strategy needs to
    reach the random curve's final mean."""
    sim = Simulation(config, sizes, DEFAULT_DIVERSITY if diversity is None else diversity, warm_epochs)
    start = time.perf_counter()
    curves = {s: sim.run(s) for s in strategies}
    randoms = [sim.run_random(seed) for seed in seeds]
    points = [0, *sim.sizes]
    random_mean = {s: float(np.mean([c.f_avg[s] for c in randoms])) for s in points}
    random_std = {s: float(np.std([c.f_avg[s] for c in randoms])) for s in points}
    final = random_mean[points[-1]]
    return {
        "curves": curves,
        "random": randoms,
        "random_mean": random_mean,
        "random_std": random_std,
        "needed": {s: needed(c, final) for s, c in curves.items()},
        "pool": [len(f.pool) for f in sim.folds],
        "trainings": sim.trainings,
        "seconds": time.perf_counter() - start,
    }
