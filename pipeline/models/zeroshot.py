"""Zero-shot stance: a stance model that reads the target's wording, or stance hypotheses scored
by an NLI model or a sentence encoder; no training on the task's own labels.

``method: stance`` (the default, offline): a fine-tuned stance model (``make stance-model``:
the packaged MiniLM trained on many targets, each given by its wording) is asked about the
task's targets by their wording, whether it saw them in training or not. Its input is the
(actor name and target wording, marked sentence) pair it was trained on: the first segment's
template is the stance model's own, the mention mark and text normalisation the task config's
(a tweet's author is not marked). Labels are matched to the task's by name, any case. Mention
gating applies as below; the rest of this section (hypotheses, thresholds) is for the two
hypothesis methods.

For a row (sentence, actor, target) the premise is the sentence with the actor's mentions
marked (``model.input.mark``: "Zelensky said [Macron] urged concessions."); each label's
hypotheses are its templates (``zeroshot.hypotheses``) filled with the actor's display name
and the target's wording ("Emmanuel Macron supports territorial concessions by Ukraine to
Russia.").

Scores, per label with hypotheses for the row's target (mean over its templates):

* ``method: nli``, ``nli_scoring: candidates``: the entailment logit of (premise, hypothesis),
  the entailment class read from the model's ``id2label``. With one template per label and
  no threshold this is transformers' ``pipeline("zero-shot-classification")`` with the
  hypotheses as candidate labels (``multi_label=False``).
* ``method: similarity``: the cosine between the mean-pooled embeddings of premise and
  hypothesis (any sentence encoder; the packaged all-MiniLM-L6-v2 offline).

then ``none_threshold`` (when set) stands in for the none label's score (the larger of the
two when the none label has hypotheses too), and the probabilities are
``softmax(scores / temperature)``: a stance label wins only when it scores above the
threshold and above the other labels.

* ``method: nli``, ``nli_scoring: mapped``: only the hypotheses of the label that
  ``nli_labels`` maps ``entailment`` to are posed ("{actor} supports {target}."); the NLI
  softmax goes to the task labels through ``nli_labels`` (entailment -> favor, contradiction
  -> against, neutral -> none), averaged over the templates.

Fast path: with ``mention_gating`` an actor that no alias matches in the sentence (and any
empty sentence) gets the none label without a model call; the remaining (premise,
hypothesis) pairs, deduplicated, form one stream over the whole input, sorted by length and
cut into batches of ``batch_size``, run under ``torch.inference_mode``.

``fit`` updates no weight. With ``calibrate: true`` it picks ``none_threshold`` on the
training split (the threshold maximising F_avg there); otherwise it only loads the model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from pipeline.config import DEFAULT_HYPOTHESES, InputFormat, ModelConfig, TaskConfig, ZeroShotConfig
from pipeline.metrics import f_avg, macro_f1
from pipeline.models.base import EpochHook, StanceModel
from pipeline.models.encoders import ModelLoadError, load_hf, mean_pool, padded_batches, resolve_base_model
from pipeline.models.inputs import InputFormatter, Row, rows_of
from pipeline.models.nli import entailment_index, nli_label_matrix
from pipeline.models.store import read_spec

STANCE_SUBFOLDER = "stance_model"  # where a saved zero-shot model keeps its stance model


def label_columns(task_labels: list[str], model_labels: list[str], name: str) -> list[int]:
    """For each task label, the stance model's column of the same name (any case)."""
    lowered = [lab.lower() for lab in model_labels]
    missing = [lab for lab in task_labels if lab.lower() not in lowered]
    if missing or len(task_labels) != len(model_labels):
        raise ModelLoadError(
            f"the stance model {name} predicts {model_labels}; the task's labels {task_labels} must be the same "
            f"names (any case), found no match for {missing or 'every label'}"
        )
    return [lowered.index(lab.lower()) for lab in task_labels]


class ZeroShotModel(StanceModel):
    backend = "zeroshot"

    def __init__(
        self,
        task: TaskConfig,
        model_cfg: ModelConfig,
        zeroshot: ZeroShotConfig | None = None,
        stance_model: StanceModel | None = None,
    ):
        """``stance_model``: for method stance, an already loaded stance model (else ``zeroshot.model`` is loaded)."""
        super().__init__(task, model_cfg)
        self.zs = zeroshot or ZeroShotConfig()
        self.zs.check_task(task)
        self.none_threshold = self.zs.none_threshold
        self.tokenizer = None
        self.model = None
        self._weights = self.zs.weights  # where the weights come from; the model folder once saved
        self._entail: int | None = None
        self._nli_matrix: np.ndarray | None = None
        self.stance_model: StanceModel | None = None
        self._columns: list[int] = []
        if stance_model is not None:
            self._bind(stance_model)

    @classmethod
    def from_config(cls, config) -> ZeroShotModel:
        return cls(config.task, config.model, config.zeroshot)

    def use_task(self, task: TaskConfig) -> None:
        """As for every model, and the hypotheses must cover the new task's targets and labels."""
        try:
            self.zs.check_task(task)
        except ValueError as exc:
            raise ModelLoadError(f"the task does not fit the zero-shot hypotheses: {exc}") from None
        super().use_task(task)
        if self.stance_model is not None:
            self._bind(self.stance_model)

    @property
    def source(self) -> str:
        return self._weights

    # ---------------------------------------------------------------- loading

    @property
    def _is_nli(self) -> bool:
        return self.zs.method == "nli"

    @property
    def _is_stance(self) -> bool:
        return self.zs.method == "stance"

    def _bind(self, stance_model: StanceModel) -> None:
        """Point the stance model at this task: its actors and targets, labels matched by name, its
        own first-segment template with this config's mention mark and normalisation."""
        self._columns = label_columns(self.labels, stance_model.labels, self._weights)
        none = stance_model.labels[self._columns[self.labels.index(self.task.none_label)]]
        task = self.task.model_copy(update={"labels": list(stance_model.labels), "none_label": none})
        stance_model.use_task(task)
        fmt = InputFormat(
            first=stance_model.model_cfg.input.first,
            mark=self.model_cfg.input.mark,
            normalize=self.model_cfg.input.normalize,
        )
        stance_model.formatter = InputFormatter(task, fmt)
        self.stance_model = stance_model

    def _load_stance_model(self) -> StanceModel:
        """The saved stance model ``zeroshot.model`` names: a fine-tuned transformer (folder or MLflow URI)."""
        from pipeline.models.transformer import TransformerModel

        try:
            folder, spec, task, model_cfg = read_spec(self._weights)
        except ModelLoadError as exc:
            raise ModelLoadError(
                f"zeroshot.model: {exc}; method 'stance' needs a trained stance model: `make stance-model` "
                "trains models/stance-minilm (about 10 minutes on 2 cores), or set zeroshot.model"
            ) from None
        if spec["backend"] != TransformerModel.backend:
            raise ModelLoadError(
                f"zeroshot.model {self._weights} is a {spec['backend']!r} model; method 'stance' needs a fine-tuned "
                f"'transformer' stance model (`make stance-model`)"
            )
        # The zero-shot model's runtime and threads are its stance model's.
        model_cfg = model_cfg.model_copy(update={"runtime": self.model_cfg.runtime, "threads": self.model_cfg.threads})
        model = TransformerModel._load_files(folder, task, model_cfg, spec)
        model.info = spec.get("info", {})
        return model

    def _ensure_loaded(self) -> None:
        if self.model is not None or self.stance_model is not None:
            return
        import torch

        if self.zs.threads:
            torch.set_num_threads(self.zs.threads)
        if self._is_stance:
            self._bind(self._load_stance_model())
            return
        path = resolve_base_model(self._weights)
        if self._is_nli:
            self.tokenizer, self.model = load_hf(path)
            self._entail = entailment_index(self.model.config, self._weights)
            if self.zs.nli_scoring == "mapped":
                self._nli_matrix = nli_label_matrix(self.model.config, self.zs.nli_labels, self.labels, self._weights)
        else:
            from transformers import AutoModel

            self.tokenizer, self.model = load_hf(path, auto_class=AutoModel)
        self.model.eval()

    # ---------------------------------------------------------------- hypotheses and gating

    def _templates(self, target: str) -> dict[str, list[str]]:
        per_label = self.zs.hypotheses.get(target, self.zs.hypotheses.get(DEFAULT_HYPOTHESES, {}))
        if self._is_nli and self.zs.nli_scoring == "mapped":
            entailed = self.zs.required_labels(self.task)[0]
            return {entailed: per_label[entailed]}
        return per_label

    def _live(self, row: Row) -> bool:
        """Whether a row needs the model: a sentence, and (with gating) an actor it refers to.

        Gated: an actor nothing refers to (no attribution, no alias match). A quote's speaker is
        attributed without a mention (spans == ()), and is scored."""
        if not row.text.strip():
            return False
        return not (self.zs.mention_gating and row.spans is None and not self.formatter.spans(row))

    def _items(self, rows: list[Row]) -> tuple[list[int], list[str], list[list[tuple[int, str]]]]:
        """Rows that need the model, their premises, and their (label index, hypothesis) lists."""
        live, premises, hyps = [], [], []
        for i, row in enumerate(rows):
            if not self._live(row):
                continue
            actor, wording = self.formatter.actor_name(row), self.formatter.wording(row)
            live.append(i)
            premises.append(self.formatter.pair(row)[1])
            hyps.append(
                [
                    (self.labels.index(label), template.format(actor=actor, target=wording))
                    for label, templates in self._templates(row.target).items()
                    for template in templates
                ]
            )
        return live, premises, hyps

    # ---------------------------------------------------------------- the model calls

    def _nli_logits(self, pairs: list[tuple[str, str]], batch_size: int) -> np.ndarray:
        import torch

        # only_first: the premise is cut, never the hypothesis (as the zero-shot pipeline does).
        enc = self.tokenizer(
            [p for p, _ in pairs], [h for _, h in pairs], truncation="only_first", max_length=self.model_cfg.max_length
        )
        out = np.zeros((len(pairs), self.model.config.num_labels), dtype=np.float32)
        with torch.inference_mode():
            for idx, batch in padded_batches(enc, self.tokenizer, batch_size):
                out[idx] = self.model(**batch).logits.float().numpy()
        return out

    def _embeddings(self, texts: list[str], batch_size: int) -> np.ndarray:
        import torch

        enc = self.tokenizer(texts, truncation=True, max_length=self.model_cfg.max_length)
        out = np.zeros((len(texts), self.model.config.hidden_size), dtype=np.float32)
        with torch.inference_mode():
            for idx, batch in padded_batches(enc, self.tokenizer, batch_size):
                pooled = mean_pool(self.model(**batch).last_hidden_state, batch["attention_mask"])
                out[idx] = torch.nn.functional.normalize(pooled, dim=-1).numpy()
        return out

    def raw_scores(self, rows, batch_size: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Per-label scores (n, k) before the none threshold (nan: no hypothesis), and the live mask.

        For ``mapped`` scoring the scores are already probabilities.
        """
        self._ensure_loaded()
        rows = self.prepare(rows)
        batch_size = batch_size or self.zs.batch_size
        k = len(self.labels)
        scores = np.full((len(rows), k), np.nan)
        live_mask = np.zeros(len(rows), dtype=bool)
        live, premises, hyps = self._items(rows)
        if not live:
            return scores, live_mask
        live_mask[live] = True
        if self._is_nli:
            # One stream of unique (premise, hypothesis) pairs over the whole input.
            pair_index: dict[tuple[str, str], int] = {}
            for premise, row_hyps in zip(premises, hyps):
                for _, h in row_hyps:
                    pair_index.setdefault((premise, h), len(pair_index))
            logits = self._nli_logits(list(pair_index), batch_size)
            if self.zs.nli_scoring == "mapped":
                shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
                per_pair = (shifted / shifted.sum(axis=1, keepdims=True)) @ self._nli_matrix  # (pairs, k) probs
                for i, premise, row_hyps in zip(live, premises, hyps):
                    scores[i] = per_pair[[pair_index[(premise, h)] for _, h in row_hyps]].mean(axis=0)
                return scores, live_mask
            entail = logits[:, self._entail]
            pair_score = [[entail[pair_index[(p, h)]] for _, h in row_hyps] for p, row_hyps in zip(premises, hyps)]
        else:
            # Each unique text (premises and hypotheses) is embedded once; scores are cosines.
            text_index: dict[str, int] = {}
            for premise, row_hyps in zip(premises, hyps):
                for text in (premise, *(h for _, h in row_hyps)):
                    text_index.setdefault(text, len(text_index))
            emb = self._embeddings(list(text_index), batch_size)
            pair_score = [
                [float(emb[text_index[p]] @ emb[text_index[h]]) for _, h in row_hyps]
                for p, row_hyps in zip(premises, hyps)
            ]
        for i, row_hyps, row_scores in zip(live, hyps, pair_score):
            sums, counts = np.zeros(k), np.zeros(k)
            for (j, _), value in zip(row_hyps, row_scores):
                sums[j] += value
                counts[j] += 1
            scores[i] = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
        return scores, live_mask

    def _to_probs(self, scores: np.ndarray, live: np.ndarray, threshold: float | None) -> np.ndarray:
        """The documented rule: threshold for the none label, softmax(scores / temperature)."""
        none = self.labels.index(self.task.none_label)
        probs = np.zeros_like(scores)
        probs[~live, none] = 1.0
        if not live.any():
            return probs
        s = scores[live].copy()
        if self._is_nli and self.zs.nli_scoring == "mapped":
            probs[live] = s
            return probs
        if threshold is not None:
            s[:, none] = np.fmax(s[:, none], threshold)  # fmax: the threshold where none has no hypothesis
        s = s / self.zs.temperature
        s = np.where(np.isnan(s), -np.inf, s)
        e = np.exp(s - s.max(axis=1, keepdims=True))
        probs[live] = e / e.sum(axis=1, keepdims=True)
        return probs

    # ---------------------------------------------------------------- the StanceModel interface

    def fit(self, train, dev=None, on_epoch: EpochHook | None = None) -> dict[str, Any]:
        """No weight update: loads the model; with ``calibrate`` picks the none threshold on ``train``
        (hypothesis methods; the stance method never looks at the task's labels)."""
        self._ensure_loaded()
        self.info.update({"zeroshot_method": self.zs.method, "zeroshot_model": self._weights, "weights_updated": False})
        if self._is_stance:
            self.info["stance_model_info"] = self.stance_model.info
            return {}
        if not self.zs.calibrate:
            return {}
        scores, live = self.raw_scores(rows_of(train))
        y_true = self.task.label_names(train["label"])
        self.none_threshold, train_f = self._pick_threshold(scores, live, y_true)
        self.info.update({"calibrated_none_threshold": self.none_threshold, "calibration_train_f_avg": train_f})
        return {"calibrated_none_threshold": self.none_threshold, "calibration_train_f_avg": train_f}

    def _pick_threshold(self, scores: np.ndarray, live: np.ndarray, y_true: list[str]) -> tuple[float, float]:
        """The threshold with the best F_avg (then macro-F1, then the higher threshold) on these rows.

        Candidates: midpoints between the sorted best stance scores, plus one below and one above all.
        """
        stance = [self.labels.index(lab) for lab in self.task.stance_labels]
        best_stance = np.nanmax(scores[live][:, stance], axis=1) if live.any() else np.zeros(0)
        values = np.unique(best_stance[np.isfinite(best_stance)])
        if len(values) == 0:
            return float(self.none_threshold or 0.0), 0.0
        candidates = np.concatenate([[values[0] - 1.0], (values[:-1] + values[1:]) / 2, [values[-1] + 1.0]])
        best: tuple[float, float, float] | None = None
        for t in candidates:
            pred = self.task.predicted(self._to_probs(scores, live, float(t)))
            key = (f_avg(y_true, pred, self.task.stance_labels), macro_f1(y_true, pred, self.labels), float(t))
            if best is None or key > best:
                best = key
        return best[2], best[0]

    def prepare(self, rows) -> list[Row]:
        """Method stance: the stance model's own preparation (its long-sentence window)."""
        if not self._is_stance:
            return super().prepare(rows)
        self._ensure_loaded()
        return self.stance_model.prepare(rows)

    def _stance_probs(self, rows: list[Row], batch_size: int | None) -> np.ndarray:
        """Method stance: the stance model on the live rows, its columns in the task's label order."""
        self._ensure_loaded()
        probs = np.zeros((len(rows), len(self.labels)), dtype=np.float32)
        mask = np.array([self._live(row) for row in rows], dtype=bool)
        probs[~mask, self.labels.index(self.task.none_label)] = 1.0
        live = np.flatnonzero(mask).tolist()
        if live:
            out = self.stance_model._predict_prepared([rows[i] for i in live], batch_size or self.zs.batch_size)
            probs[live] = out[:, self._columns]
        return probs

    def _predict_prepared(self, rows: list[Row], batch_size: int | None = None) -> np.ndarray:
        if self._is_stance:
            return self._stance_probs(rows, batch_size)
        scores, live = self.raw_scores(rows, batch_size)
        return self._to_probs(scores, live, self.none_threshold)

    def spec(self) -> dict[str, Any]:
        # The threshold in use (calibrated or configured) is saved, so loading needs nothing else.
        zs = self.zs.model_dump() | {"none_threshold": self.none_threshold}
        return super().spec() | {"zeroshot": zs}

    def _save_files(self, folder: Path) -> None:
        self._ensure_loaded()
        if self._is_stance:  # the stance model travels inside: the saved (and logged) model needs nothing else
            self.stance_model.save(folder / STANCE_SUBFOLDER)
            return
        self.model.save_pretrained(folder)
        self.tokenizer.save_pretrained(folder)

    @classmethod
    def _load_files(cls, folder, task, model_cfg, spec) -> ZeroShotModel:
        zs = ZeroShotConfig.model_validate(spec["zeroshot"])
        model = cls(task, model_cfg, zs)
        model._weights = str(Path(folder) / STANCE_SUBFOLDER) if model._is_stance else str(folder)
        model._ensure_loaded()
        return model
