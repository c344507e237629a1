"""Stance of every actor a sentence refers to, on every target, in new articles.

``StanceClassifier.load(uri)`` takes a model folder, ``runs:/<run_id>/model`` or
``models:/<name>@<alias>``; the model's saved task (actors with aliases, targets, labels)
is all it needs. ``analyze(text)`` segments the text, skips page furniture, attributes
actors to sentences (names, titles by the document's date, pronouns, quote speakers:
pipeline/data/attribution.py) and classifies each (sentence, actor, target);
``predict_documents`` does the same over a stream of documents in fixed-size batches.
The model's own input preparation (``model.prepare``) marks the actor and cuts long
sentences to a window around the mention, as in every other door.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

from pipeline.config import load_task
from pipeline.data.actors import DatedMatchers
from pipeline.data.attribution import attribute
from pipeline.data.documents import Document
from pipeline.data.segment import Sentence, segment
from pipeline.inference.records import Prediction, PredictStats
from pipeline.models.base import StanceModel
from pipeline.models.inputs import Row
from pipeline.models.registry import load_model

DEFAULT_BATCH_SIZE = 256


class Pair(NamedTuple):
    """One (sentence, actor, target) waiting for its batch."""

    doc: Document
    sent: Sentence
    row: Row
    via: str


class StanceClassifier:
    """Actor x target stance in new text, from a saved stance model and its own task."""

    def __init__(self, model: StanceModel, uri: str = ""):
        self.model = model
        self.uri = uri
        self.task = model.task
        self.matcher = DatedMatchers(self.task)  # the actor matcher at a document's date

    @classmethod
    def load(cls, uri, task: str | Path | None = None, runtime: str | None = None) -> StanceClassifier:
        """A model folder, ``runs:/<run_id>/model`` or ``models:/<name>@<alias>``; ``task``: a task
        file to predict instead of the model's own (new actors, aliases or targets, the same labels);
        ``runtime``: torch, onnx or onnx-int8 instead of the model's own."""
        model = load_model(uri, runtime=runtime)
        if task is not None:
            model.use_task(load_task(task))
        return cls(model, str(uri))

    @property
    def labels(self) -> list[str]:
        return self.model.labels

    def predict(self, rows) -> list[dict[str, Any]]:
        """A label and a probability per label for each (text, actor, target) row."""
        return self.model.predict(rows)

    def analyze(self, text: str, doc_id: str = "doc", date: str | None = None) -> list[Prediction]:
        """Every attributed actor x every target in every sentence of ``text`` (furniture skipped)."""
        return list(self.predict_documents([Document(doc_id, text, date)]))

    def _pairs(self, doc: Document, sentences: list[Sentence], stats: PredictStats) -> list[Pair]:
        refs = attribute([s.text for s in sentences], self.task, self.matcher(doc.date))
        out = []
        for sent, found in zip(sentences, refs):
            stats.sentences_with_actors += bool(found)
            for ref in found:
                stats.via[ref.via] = stats.via.get(ref.via, 0) + len(self.task.target_ids)
                out += [
                    Pair(doc, sent, Row(sent.text, ref.actor, target, spans=ref.spans), ref.via)
                    for target in self.task.target_ids
                ]
        return out

    def _classify(self, pairs: list[Pair], stats: PredictStats) -> Iterator[Prediction]:
        if not pairs:
            return
        rows = self.model.prepare([p.row for p in pairs])
        probs = self.model.predict_proba(rows)
        labels = self.labels
        names = self.task.predicted(probs)
        stats.pairs += len(pairs)
        stats.truncated += sum(r.truncated for r in rows)
        for pair, row, p, label in zip(pairs, rows, probs, names):
            doc, sent = pair.doc, pair.sent
            yield Prediction(
                doc_id=doc.doc_id,
                sentence_id=sent.id,
                start=sent.start,
                end=sent.end,
                sentence=sent.text,
                actor=row.actor,
                target=row.target,
                label=label,
                probs={lab: round(float(v), 6) for lab, v in zip(labels, p)},
                via=pair.via,
                truncated=row.truncated,
                encoding_replaced=doc.encoding_replaced,
                date=doc.date,
            )

    def predict_documents(
        self, documents: Iterable[Document], batch_size: int = DEFAULT_BATCH_SIZE, stats: PredictStats | None = None
    ) -> Iterator[Prediction]:
        """Predictions for a stream of documents, classified ``batch_size`` pairs at a time.

        Only one batch of pending pairs (and one document) is held at once, so memory does not
        grow with the input.
        """
        stats = stats if stats is not None else PredictStats()
        for batch in self.pair_batches(documents, batch_size, stats):
            yield from self._classify(batch, stats)

    def pair_batches(
        self, documents: Iterable[Document], batch_size: int = DEFAULT_BATCH_SIZE, stats: PredictStats | None = None
    ) -> Iterator[list[Pair]]:
        """The (sentence, actor, target) pairs of a stream of documents, ``batch_size`` at a time
        (the last batch shorter): each pair's document, sentence, unprepared row (the actor's
        mention spans in ``row.spans``) and how the actor was found."""
        stats = stats if stats is not None else PredictStats()
        pending: list[Pair] = []
        for doc in documents:
            stats.documents += 1
            stats.encoding_replaced += doc.encoding_replaced
            sentences = segment(doc.text, doc.doc_id)
            stats.empty_documents += not sentences
            text_units = [s for s in sentences if not s.furniture]
            stats.furniture += len(sentences) - len(text_units)
            stats.sentences += len(text_units)
            pending += self._pairs(doc, text_units, stats)
            while len(pending) >= batch_size:
                batch, pending = pending[:batch_size], pending[batch_size:]
                yield batch
        if pending:
            yield pending
