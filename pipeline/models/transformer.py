"""The fine-tuned transformer: a Hugging Face encoder with a classification head, trained with
the Trainer on (actor + target, marked sentence) pairs, class-weighted loss, early stopping on
dev F_avg. Any base model by config: the packaged all-MiniLM-L6-v2, a local path, a hub id.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.config import Config, TrainingConfig
from pipeline.models.augment import capped_per_target, negated_examples, unrelated_examples
from pipeline.models.base import SPEC_FILE, EpochHook, StanceModel, class_weights
from pipeline.models.encoders import ModelLoadError, load_hf, padded_batches, resolve_base_model
from pipeline.models.inputs import Row, rows_of
from pipeline.process import check_stop, remove_scratch, scratch_dir


def _length_grouping(on: bool) -> dict[str, Any]:
    """TrainingArguments for length-grouped batches: transformers 5 names it train_sampling_strategy."""
    from transformers import TrainingArguments

    if "train_sampling_strategy" in {f.name for f in dataclasses.fields(TrainingArguments)}:
        return {"train_sampling_strategy": "group_by_length" if on else "random"}
    return {"group_by_length": on}


def _weighted_trainer(weights):
    """The Trainer with a class-weighted loss: it has no class-weight option, and the loss is the one place."""
    import torch
    from transformers import Trainer

    class WeightedTrainer(Trainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            gold = inputs.pop("labels")
            outputs = model(**inputs)
            loss = torch.nn.functional.cross_entropy(outputs.logits, gold, weight=weights.to(outputs.logits.device))
            return (loss, outputs) if return_outputs else loss

    return WeightedTrainer


def _epoch_callback(on_epoch: EpochHook):
    """A Trainer callback that hands each epoch's logged figures to a plain hook."""
    from transformers import TrainerCallback

    names = {"loss": "train_loss", "eval_loss": "dev_loss", "eval_f_avg": "dev_f_avg", "eval_macro_f1": "dev_macro_f1"}

    class EpochCallback(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            figures = {names[k]: float(v) for k, v in (logs or {}).items() if k in names}
            if figures:
                on_epoch(int(round(state.epoch or 0)), figures)

    return EpochCallback()


def _stop_callback():
    """Stop at the next step once a stop signal came, even if its exception was swallowed where it
    landed (a ``__del__`` run by the garbage collector prints and drops exceptions)."""
    from transformers import TrainerCallback

    class StopCallback(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            check_stop()

    return StopCallback()


class TransformerModel(StanceModel):
    backend = "transformer"

    def __init__(self, task, model_cfg, training: TrainingConfig | None = None):
        super().__init__(task, model_cfg)
        self.training = training or TrainingConfig()
        self.tokenizer = None
        self.model = None  # the torch module; None when loaded for an ONNX runtime alone
        self.onnx = None  # runtime.OnnxForward when model.runtime is onnx or onnx-int8
        self.folder: Path | None = None  # where it was loaded from

    @classmethod
    def from_config(cls, config: Config) -> TransformerModel:
        return cls(config.task, config.model, config.training)

    @property
    def source(self) -> str:
        return self.model_cfg.base_model

    # -- input
    def _encode(self, rows: list[Row], truncation: bool = True):
        first, second = zip(*(self.formatter.pair(r) for r in rows)) if rows else ((), ())
        if not truncation:  # lengths only; an over-long input is the expected case here, not a warning
            return self.tokenizer(list(first), list(second), verbose=False)
        return self.tokenizer(list(first), list(second), truncation=True, max_length=self.model_cfg.max_length)

    def fits(self, row: Row) -> bool:
        """Whether the encoded (actor and target, marked sentence) pair fits ``max_length`` untruncated."""
        return len(self._encode([row], truncation=False)["input_ids"][0]) <= self.model_cfg.max_length

    def prepare(self, rows) -> list[Row]:
        rows = super().prepare(rows)
        todo = [i for i, r in enumerate(rows) if not r.truncated]
        lengths = self._encode([rows[i] for i in todo], truncation=False)["input_ids"] if todo else []
        for i, ids in zip(todo, lengths):
            if len(ids) > self.model_cfg.max_length:
                rows[i] = self.formatter.windowed(rows[i], self.fits)
        return rows

    # -- training
    def _load_base(self) -> None:
        k = len(self.labels)
        label_maps = {
            "id2label": dict(enumerate(self.labels)),
            "label2id": {lab: i for i, lab in enumerate(self.labels)},
        }
        base = resolve_base_model(self.model_cfg.base_model)
        if self.model_cfg.pooling == "mean":
            from transformers import AutoModel

            from pipeline.models.heads import MeanPooledClassifier

            self.tokenizer, encoder = load_hf(base, auto_class=AutoModel, **label_maps)
            self.model = MeanPooledClassifier(encoder, k)
        else:
            self.tokenizer, self.model = load_hf(base, num_labels=k, ignore_mismatched_sizes=True, **label_maps)

    def _features(self, dataset, augment: bool = False):
        from datasets import Dataset

        rows, labels = rows_of(dataset), list(dataset["label"])
        if augment:
            rows, labels = self._augmented(rows, labels)
        enc = self._encode(self.prepare(rows))
        return Dataset.from_dict(dict(enc) | {"labels": labels})

    def _arguments(self, workdir: str, n_train: int, use_dev: bool):
        import torch
        from transformers import TrainingArguments

        t = self.training
        distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
        steps_per_epoch = -(-n_train // t.batch_size)
        return TrainingArguments(
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

    def _compute_metrics(self):
        from pipeline.metrics import f_avg, macro_f1

        task, labels, stance = self.task, self.labels, list(self.task.stance_labels)

        def compute(pred):
            y_true, y_pred = task.label_names(pred.label_ids), task.predicted(pred.predictions)
            return {"f_avg": f_avg(y_true, y_pred, stance), "macro_f1": macro_f1(y_true, y_pred, labels)}

        return compute

    def _augmented(self, rows: list[Row], labels: list[int]) -> tuple[list[Row], list[int]]:
        """The training rows after ``training``'s cap per target, negated and unrelated targets."""
        t = self.training
        if t.max_per_target:
            keep = capped_per_target([r.target for r in rows], t.max_per_target, t.seed)
            rows, labels = [rows[i] for i in keep], [labels[i] for i in keep]
        stance = list(self.task.stance_labels)
        more_rows, more_labels = negated_examples(
            rows, labels, self.labels, stance, t.negate_targets, t.seed, self.formatter.wording
        )
        rows, labels = rows + more_rows, labels + more_labels
        if t.unrelated_targets:  # embedding the wordings loads the base model: only when asked
            none = self.labels.index(self.task.none_label)
            more_rows, more_labels = unrelated_examples(
                rows, labels, none, t.unrelated_targets, t.seed, self.formatter.wording, self._embed_wordings
            )
            rows, labels = rows + more_rows, labels + more_labels
        return rows, labels

    def _embed_wordings(self, wordings: list[str]) -> np.ndarray:
        """Unit-length mean-pooled embeddings of target wordings by the base model, before training."""
        import torch
        from transformers import AutoModel

        from pipeline.models.encoders import mean_pool

        encoder = AutoModel.from_pretrained(resolve_base_model(self.model_cfg.base_model))
        enc = self.tokenizer(wordings, truncation=True, max_length=self.model_cfg.max_length)
        out = np.zeros((len(wordings), encoder.config.hidden_size), dtype=np.float32)
        with torch.inference_mode():
            for idx, batch in padded_batches(enc, self.tokenizer, 64):
                pooled = mean_pool(encoder(**batch).last_hidden_state, batch["attention_mask"])
                out[idx] = torch.nn.functional.normalize(pooled, dim=-1).numpy()
        return out

    def fit(self, train, dev=None, on_epoch: EpochHook | None = None, warm_start: bool = False) -> dict[str, Any]:
        """Fine-tune the base model on ``train`` (``warm_start``: go on from this fitted model's
        weights instead, e.g. on a few newly annotated sentences)."""
        import torch
        from transformers import DataCollatorWithPadding, EarlyStoppingCallback, PrinterCallback, set_seed
        from transformers.utils import logging as hf_logging

        t = self.training
        hf_logging.set_verbosity_error()  # per-epoch lines come from the epoch hook
        hf_logging.disable_progress_bar()
        if t.threads:
            torch.set_num_threads(t.threads)
        set_seed(t.seed)
        if not (warm_start and self.model is not None):
            self._load_base()
        train_ds = self._features(train, augment=True)
        self.info["train_examples"] = len(train_ds)  # after the cap and the augmentations
        use_dev = dev is not None and len(dev) > 0
        dev_ds = self._features(dev) if use_dev else None
        weights = torch.tensor(
            class_weights(np.asarray(train["label"]), len(self.labels), t.class_weight), dtype=torch.float
        )
        callbacks = [_stop_callback(), *([_epoch_callback(on_epoch)] if on_epoch else [])]
        if use_dev and t.early_stopping_patience > 0:
            callbacks.append(EarlyStoppingCallback(early_stopping_patience=t.early_stopping_patience))
        workdir = scratch_dir("train")  # checkpoints: removed below, or by the next run if we are killed
        try:
            trainer = _weighted_trainer(weights)(
                model=self.model,
                args=self._arguments(str(workdir), len(train_ds), use_dev),
                train_dataset=train_ds,
                eval_dataset=dev_ds,
                processing_class=self.tokenizer,
                data_collator=DataCollatorWithPadding(self.tokenizer),
                compute_metrics=self._compute_metrics() if use_dev else None,
                callbacks=callbacks,
            )
            trainer.remove_callback(PrinterCallback)
            start = time.time()
            trainer.train()
        finally:
            remove_scratch(workdir)
        self.model = trainer.model
        self.model.eval()
        history = {
            "world_size": trainer.args.world_size,  # > 1 under torchrun / accelerate launch
            "train_seconds": time.time() - start,
            "epochs_run": float(trainer.state.epoch or 0),
            "best_dev_f_avg": trainer.state.best_metric,
        }
        self.info.update({"base_model": self.model_cfg.base_model, "class_weights": weights.tolist(), **history})
        return history

    # -- prediction
    def _predict_prepared(self, rows: list[Row], batch_size: int | None = None) -> np.ndarray:
        import torch

        out = np.zeros((len(rows), len(self.labels)), dtype=np.float32)
        if not rows:
            return out
        if self.onnx is not None:
            from scipy.special import softmax

            for idx, batch in padded_batches(
                self._encode(rows), self.tokenizer, batch_size or self.training.eval_batch_size, "np"
            ):
                out[idx] = softmax(self.onnx(batch).astype(np.float32), axis=-1)
            return out
        device = next(self.model.parameters()).device
        with torch.inference_mode():
            for idx, batch in padded_batches(
                self._encode(rows), self.tokenizer, batch_size or self.training.eval_batch_size
            ):
                logits = self.model(**{k: v.to(device) for k, v in batch.items()}).logits
                out[idx] = torch.softmax(logits.float(), dim=-1).cpu().numpy()
        return out

    # -- files
    def spec(self):
        return super().spec() | {"training": self.training.model_dump()}

    def _save_files(self, folder):
        from transformers.utils import logging as hf_logging

        from pipeline.models import runtime

        runtime_name = self.model_cfg.runtime
        if self.model is None:  # loaded for an ONNX runtime alone: its folder's files, as they are
            for path in self.folder.iterdir():
                if path.name != SPEC_FILE and not path.name.startswith("."):
                    (shutil.copytree if path.is_dir() else shutil.copy2)(path, Path(folder) / path.name)
            return
        hf_logging.disable_progress_bar()
        self.model.save_pretrained(folder)
        self.tokenizer.save_pretrained(folder)
        if runtime_name != "torch":  # the saved (and logged) model carries its runtime's file
            runtime.export(self.model, self.tokenizer, folder, runtime_name)

    @classmethod
    def _load_files(cls, folder, task, model_cfg, spec):
        model = cls(task, model_cfg, TrainingConfig(**spec.get("training", {})))
        model.folder = Path(folder)
        if model_cfg.runtime == "torch":
            model._load_torch(folder)
        else:
            model._load_onnx(folder)
        return model

    def _load_onnx(self, folder) -> None:
        """The tokenizer and an ONNX Runtime session; the model is exported first if the folder has
        no file for the runtime yet (once: the file stays in the folder)."""
        from transformers import AutoConfig, AutoTokenizer

        from pipeline.models import runtime

        path = runtime.onnx_file(folder, self.model_cfg.runtime)
        if not path.is_file():
            self._load_torch(folder)
            print(f"exporting {folder} for {self.model_cfg.runtime} (once) ...", file=sys.stderr, flush=True)
            runtime.export(self.model, self.tokenizer, folder, self.model_cfg.runtime)
            self.model = None  # the session replaces it; its memory goes
        else:
            self._check_labels(folder, AutoConfig.from_pretrained(str(folder)))
            self.tokenizer = AutoTokenizer.from_pretrained(str(folder))
        self.onnx = runtime.OnnxForward(path, self.model_cfg.threads)

    def _load_torch(self, folder) -> None:
        from pipeline.models.heads import MeanPooledClassifier, is_mean_pooled

        if self.model_cfg.threads:
            import torch

            torch.set_num_threads(self.model_cfg.threads)
        if is_mean_pooled(folder):
            from transformers import AutoModel

            self.tokenizer, encoder = load_hf(str(folder), auto_class=AutoModel)
            self.model = MeanPooledClassifier.from_encoder_folder(folder, encoder)
        else:
            self.tokenizer, self.model = load_hf(str(folder))
        self._check_labels(folder, self.model.config)
        self.model.eval()

    def _check_labels(self, folder, hf_config) -> None:
        id2label = {int(i): lab for i, lab in hf_config.id2label.items()}
        if [id2label[i] for i in range(len(id2label))] != self.labels:
            raise ModelLoadError(f"{folder}: the model's id2label {id2label} does not match stance.json labels")
