"""The baselines: the majority label, and TF-IDF + logistic regression."""

from __future__ import annotations

from typing import Any

import numpy as np

from pipeline.config import Config, TfidfConfig
from pipeline.models.base import EpochHook, StanceModel
from pipeline.models.inputs import Row, rows_of


class MajorityModel(StanceModel):
    """The most frequent training label (scikit-learn's DummyClassifier)."""

    backend = "majority"

    @classmethod
    def from_config(cls, config: Config) -> MajorityModel:
        return cls(config.task, config.model)

    def fit(self, train, dev=None, on_epoch: EpochHook | None = None):
        from sklearn.dummy import DummyClassifier

        y = np.asarray(train["label"])
        self.clf = DummyClassifier(strategy="prior").fit(np.zeros((len(y), 1)), y)
        return {}

    def _predict_prepared(self, rows: list[Row], batch_size: int | None = None) -> np.ndarray:
        probs = np.zeros((len(rows), len(self.labels)))
        if rows:
            probs[:, self.clf.classes_] = self.clf.predict_proba(np.zeros((len(rows), 1)))
        return probs

    def _save_files(self, folder):
        import joblib

        joblib.dump(self.clf, folder / "model.joblib")

    @classmethod
    def _load_files(cls, folder, task, model_cfg, spec):
        import joblib

        model = cls(task, model_cfg)
        model.clf = joblib.load(folder / "model.joblib")
        return model


class TfidfModel(StanceModel):
    """TF-IDF + logistic regression, one model per target (as in the benchmark's reference), the
    actor's mentions replaced by a placeholder token; a model over all targets for unseen ones."""

    backend = "tfidf"

    @classmethod
    def from_config(cls, config: Config) -> TfidfModel:
        return cls(config.task, config.model, config.tfidf)

    def __init__(self, task, model_cfg, tfidf: TfidfConfig | None = None):
        super().__init__(task, model_cfg)
        self.tfidf = tfidf or TfidfConfig()
        self.per_target: dict[str, Any] = {}

    def _pipeline(self):
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline

        return make_pipeline(
            TfidfVectorizer(ngram_range=(1, self.tfidf.ngram_max), min_df=self.tfidf.min_df, sublinear_tf=True),
            LogisticRegression(
                C=self.tfidf.C,
                class_weight=None if self.tfidf.class_weight == "none" else "balanced",
                max_iter=2000,
            ),
        )

    def fit(self, train, dev=None, on_epoch: EpochHook | None = None):
        from sklearn.dummy import DummyClassifier

        rows = rows_of(train)
        texts = np.array([self.formatter.flat(r) for r in rows], dtype=object)
        y = np.asarray(train["label"])
        targets = np.array([r.target for r in rows])
        for target in self.task.target_ids:
            mask = targets == target
            if len(set(y[mask].tolist())) >= 2:
                self.per_target[target] = self._pipeline().fit(texts[mask], y[mask])
            elif mask.any():  # one class only: nothing to learn but its prior
                self.per_target[target] = DummyClassifier(strategy="prior").fit(texts[mask], y[mask])
        if len(set(y.tolist())) >= 2:
            self.per_target["*"] = self._pipeline().fit(texts, y)  # for targets unseen in training
        else:
            self.per_target["*"] = DummyClassifier(strategy="prior").fit(texts, y)
        return {}

    def _predict_prepared(self, rows: list[Row], batch_size: int | None = None) -> np.ndarray:
        probs = np.zeros((len(rows), len(self.labels)))
        targets = np.array([r.target for r in rows])
        texts = np.array([self.formatter.flat(r) for r in rows], dtype=object)
        for target in set(targets.tolist()):
            idx = np.flatnonzero(targets == target)
            clf = self.per_target.get(target, self.per_target["*"])
            probs[np.ix_(idx, clf.classes_)] = clf.predict_proba(texts[idx])
        return probs

    def spec(self):
        return super().spec() | {"tfidf": self.tfidf.model_dump()}

    def _save_files(self, folder):
        import joblib

        joblib.dump(self.per_target, folder / "model.joblib")

    @classmethod
    def _load_files(cls, folder, task, model_cfg, spec):
        import joblib

        model = cls(task, model_cfg, TfidfConfig(**spec.get("tfidf", {})))
        model.per_target = joblib.load(folder / "model.joblib")
        return model
