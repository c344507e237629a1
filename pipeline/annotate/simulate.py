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

With a cache folder, every finished step (one training: its picks, its test probabilities and
its scores of the pool) is kept on disk, so a run too long for one sitting (the transformer
retrained from scratch: ~10 minutes a training on 2 CPU cores) can be stopped at any point and
resumed where it stopped. Random steps do not depend on each other, so they run largest first,
for every seed: the random curve's final point, the one the goal is judged against, comes first.
A step that takes a fold's whole pool (a fold with fewer sentences than a size) is trained once
and its result shared by every curve: the training set is the same.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import inspect
import json
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pipeline.annotate.select import DEFAULT_DIVERSITY, diverse_top, pair_scores
from pipeline.config import Config
from pipeline.data.corpus import Label
from pipeline.data.datasets import extra_examples, references, to_dataset, to_examples
from pipeline.data.validate import load_records
from pipeline.files import write_atomic
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
    whole: dict | None = None  # a finished step that took the whole pool, once there is one


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
    asked = [  # every record, so that attribution sees each document whole
        dataclasses.replace(
            r, labels=tuple(Label(a, t, task.none_label) for a in actors[r.id] for t in task.target_ids)
        )
        for r in records
    ]
    out: dict[str, list[dict]] = defaultdict(list)
    for row in to_examples(asked, task, config.data.group_by):
        out[row["unit_id"]].append(row)
    return dict(out)


class StepCache:
    """Finished steps, one JSON file each, written atomically; ``None`` folder: nothing kept.

    The files live under a digest of everything that decides a step (the config, the training
    and pool rows, the sizes, the diversity, the warm start), so a changed corpus or recipe
    starts afresh instead of mixing old steps in. A change to the code is not in the digest:
    remove the folder after one.
    """

    def __init__(self, folder: str | Path | None, *parts):
        self.folder = None
        if folder is not None:
            h = hashlib.sha256()
            for part in parts:
                h.update(json.dumps(part, sort_keys=True, default=str).encode())
            self.folder = Path(folder) / h.hexdigest()[:16]

    def get(self, key: str) -> dict | None:
        path = self.folder / f"{key}.json" if self.folder else None
        return json.loads(path.read_text(encoding="utf-8")) if path and path.is_file() else None

    def put(self, key: str, value: dict) -> dict:
        if self.folder:
            self.folder.mkdir(parents=True, exist_ok=True)
            write_atomic(self.folder / f"{key}.json", json.dumps(value))
        return value


class Simulation:
    """One simulated run: ``run(strategy)`` and ``run_random(seed)`` give a ``Curve``."""

    def __init__(
        self,
        config: Config,
        sizes=DEFAULT_SIZES,
        diversity: float = DEFAULT_DIVERSITY,
        warm_epochs: int | None = None,
        cache: str | Path | None = None,
        progress: bool = False,
    ):
        self.config = config
        self.progress = progress  # print a line per step trained
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
        self.resumed = 0  # steps read from the cache instead of trained
        self.reused = 0  # steps that took the whole pool, as a finished step had: not trained again
        self._base = None
        what = [config.model_dump(exclude={"sweep"}), self.rows, self.extra, self.candidates]
        self.cache = StepCache(cache, *what, self.sizes, diversity, warm_epochs)

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

    def _scores(self, model, pool: list[str], strategy: str) -> dict[str, float]:
        """Each pool sentence's score: its most uncertain pair's, as ``make suggest`` scores."""
        rows = [row for u in pool for row in self.candidates[u]]
        best = dict.fromkeys(pool, 0.0)
        if not rows:  # the whole pool is picked
            return best
        for row, s in zip(rows, pair_scores([self._predict(model, rows)], strategy)):
            best[row["unit_id"]] = max(best[row["unit_id"]], float(s))
        return best

    def _pick(self, scores: dict[str, float], pool: list[str], k: int) -> list[str]:
        order = diverse_top(np.array([scores[u] for u in pool]), [self.text[u] for u in pool], k, self.diversity)
        return [pool[i] for i in order]

    def _step(self, key: str, fold: _Fold, picked: list[str], strategy: str | None) -> dict:
        """Train on ``picked``, predict the fold's test rows and, for a strategy, score the rest
        of the pool; or read all of it back from the cache."""
        whole = set(picked) == set(fold.pool)
        step = self.cache.get(key)
        if step is not None and step["picked"] == picked:
            self.resumed += 1
        elif whole and fold.whole is not None:
            # The same training set as a finished step (only the rows' order differs) and no pool
            # left to score: a fold whose pool is smaller than a size gives every curve one point.
            self.reused += 1
            step = {"picked": picked, "proba": fold.whole["proba"]} | ({"scores": {}} if strategy else {})
            step = self.cache.put(key, step)
        else:
            start = time.perf_counter()
            model = self._train(picked)
            step = {"picked": picked, "proba": self._predict(model, fold.test).tolist()}
            if strategy:
                done = set(picked)
                step["scores"] = self._scores(model, [u for u in fold.pool if u not in done], strategy)
            if self.progress:  # a long run says where it is: one line a step
                print(f"  step {key}: {time.perf_counter() - start:.0f} s ({self.trainings} trained)", flush=True)
            step = self.cache.put(key, step)
        if whole and fold.whole is None:
            fold.whole = step
        return step

    def _base_step(self, i: int, strategy: str | None) -> dict:
        """The model of no sentence on fold ``i``: its test probabilities (shared by every
        curve) and, for a strategy, its scores of the pool."""
        fold, key = self.folds[i], f"base-fold{i}"
        step = self.cache.get(key) or self.cache.put(
            key, {"picked": [], "proba": self._predict(self.base_model(), fold.test).tolist()}
        )
        if strategy:
            key = f"{key}-{strategy}"
            step = step | (
                self.cache.get(key)
                or self.cache.put(key, {"scores": self._scores(self.base_model(), fold.pool, strategy)})
            )
        return step

    def _f_avg(self, steps: list[dict]) -> float:
        task = self.config.task
        return self._pooled([task.predicted(np.array(s["proba"])) for s in steps])

    def finished(self, names) -> dict[str, dict[int, float]]:
        """The points already in the cache, every fold's step finished: curve name ("margin",
        "random0") -> size -> pooled F_avg. A long run prints them when it resumes."""
        out: dict[str, dict[int, float]] = {}
        for name in names:
            for size in self.sizes:
                steps = [self.cache.get(f"{name}-fold{i}-{size}") for i in range(len(self.folds))]
                if all(steps):
                    out.setdefault(name, {})[size] = self._f_avg(steps)
        return out

    def run(self, strategy: str) -> Curve:
        """The strategy's curve: each step's model picks the next sentences."""
        curve = Curve(strategy)
        steps = [self._base_step(i, strategy) for i in range(len(self.folds))]
        curve.f_avg[0] = self._f_avg(steps)
        for size in self.sizes:
            scoring = strategy if size < self.sizes[-1] else None  # the last model picks nothing
            for i, fold in enumerate(self.folds):
                pool = [u for u in fold.pool if u in steps[i]["scores"]]
                k = min(size - len(steps[i]["picked"]), len(pool))
                picked = steps[i]["picked"] + self._pick(steps[i]["scores"], pool, k)
                steps[i] = self._step(f"{strategy}-fold{i}-{size}", fold, picked, scoring)
            curve.f_avg[size] = self._f_avg(steps)
        return curve

    def run_random(self, seed: int) -> Curve:
        """A seeded uniform draw: the first ``size`` sentences of a permutation of each pool."""
        return self.run_randoms([seed])[0]

    def run_randoms(self, seeds) -> list[Curve]:
        """One curve per seed. The steps are independent, so the largest size runs first, for
        every seed: the random curve's final mean is known before its smaller points."""
        base = self._f_avg([self._base_step(i, None) for i in range(len(self.folds))])
        curves = [Curve(f"random-{seed}", {0: base}) for seed in seeds]
        for size in sorted(self.sizes, reverse=True):
            for seed, curve in zip(seeds, curves):
                steps = [
                    self._step(f"random{seed}-fold{i}-{size}", fold, self._draw(seed, i)[:size], None)
                    for i, fold in enumerate(self.folds)
                ]
                curve.f_avg[size] = self._f_avg(steps)
        return [Curve(c.name, dict(sorted(c.f_avg.items()))) for c in curves]

    def _draw(self, seed: int, i: int) -> list[str]:
        return [str(u) for u in np.random.default_rng([seed, i]).permutation(self.folds[i].pool)]


def needed(curve: Curve, target: float) -> int | None:
    """The fewest annotated sentences (a size above 0) at which ``curve`` reaches ``target``
    (None: never). The model of no sentence is left out: when it already beats ``target``,
    annotating did harm, which the curves show."""
    return next((size for size, f in sorted(curve.f_avg.items()) if size > 0 and f >= target - 1e-12), None)


def simulate(
    config: Config,
    strategies=("margin",),
    seeds=(0, 1, 2),
    sizes=DEFAULT_SIZES,
    diversity=None,
    warm_epochs=None,
    cache: str | Path | None = None,
) -> dict:
    """Every curve, the random mean and std per size, and the sentences each strategy needs to
    reach the random curve's final mean. ``cache``: a folder for finished steps (resumable)."""
    sim = Simulation(
        config, sizes, DEFAULT_DIVERSITY if diversity is None else diversity, warm_epochs, cache, progress=True
    )
    for name, points in sim.finished([*strategies, *(f"random{seed}" for seed in seeds)]).items():
        print(f"  finished before: {name} " + ", ".join(f"{n}: {f:.4f}" for n, f in points.items()), flush=True)
    start = time.perf_counter()
    curves = {s: sim.run(s) for s in strategies}
    randoms = sim.run_randoms(list(seeds))
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
        "resumed": sim.resumed,
        "reused": sim.reused,
        "seconds": time.perf_counter() - start,
    }
