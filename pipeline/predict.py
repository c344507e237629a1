"""Stance of every mentioned actor on every target in new articles.

``StanceClassifier.load(uri)`` takes a model folder, ``runs:/<run_id>/model`` or
``models:/<name>@<alias>``; the model's saved task (actors with aliases, targets, labels)
is all it needs. ``analyze(text)`` segments the text, skips page furniture, finds the
actors' mentions and classifies each (sentence, mentioned actor, target);
``predict_documents`` does the same over a stream of documents in fixed-size batches,
and ``run_predict`` streams an input file or folder into a JSONL or CSV file.

Long sentences: when a (sentence, actor, target) input is longer than the model's
``max_length`` tokens, the sentence is cut at word boundaries to the largest window,
centred on the actor's first mention, that fits; the prediction is flagged ``truncated``.
Without the rule the tokenizer would cut the end off, and with it perhaps the mention.
"""

from __future__ import annotations

import csv
import json
import os
import re
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, NamedTuple

import numpy as np

from pipeline.actors import ActorMatcher
from pipeline.backends import ModelLoadError, StanceModel, load_model
from pipeline.documents import Document, EncodingErrors, read_documents
from pipeline.inputs import Row
from pipeline.segment import Sentence, segment

DEFAULT_BATCH_SIZE = 256
# A scheme of two letters or more ("s3://", "http://"); one letter would be a Windows drive.
_URI_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:/")


@dataclass(frozen=True)
class Prediction:
    """The stance of one actor on one target in one sentence."""

    doc_id: str
    sentence_id: str
    start: int  # character offsets of the sentence in its document
    end: int
    sentence: str
    actor: str
    target: str
    label: str
    probs: dict[str, float]
    truncated: bool = False
    encoding_replaced: bool = False
    date: str | None = None

    def to_record(self) -> dict[str, Any]:
        record = asdict(self)
        if record["date"] is None:
            del record["date"]
        return record


@dataclass
class PredictStats:
    """Counts of a prediction run, filled as documents stream through."""

    documents: int = 0
    sentences: int = 0  # not page furniture
    furniture: int = 0
    sentences_with_actors: int = 0
    pairs: int = 0
    truncated: int = 0
    empty_documents: int = 0
    encoding_replaced: int = 0
    seconds: float = 0.0

    def line(self) -> str:
        rate = self.pairs / self.seconds if self.seconds > 0 else 0.0
        return (f"{self.documents} documents, {self.sentences} sentences ({self.sentences_with_actors} with an actor), "
                f"{self.pairs} pairs classified in {self.seconds:.1f} s ({rate:.1f} pairs/s)")


class _Pair(NamedTuple):
    """One (sentence, actor, target) waiting for its batch; ``text`` is what the model reads."""

    doc: Document
    sent: Sentence
    actor: str
    target: str
    text: str
    truncated: bool


def _mlflow_uri(uri: str) -> bool:
    return uri.startswith(("runs:/", "models:/"))


class StanceClassifier:
    """Actor x target stance in new text, from a saved stance model and its own task."""

    def __init__(self, model: StanceModel, uri: str = ""):
        self.model = model
        self.uri = uri
        self.task = model.task
        self.matcher = ActorMatcher(model.task)

    @classmethod
    def load(cls, uri: str | Path) -> "StanceClassifier":
        """A model folder, ``runs:/<run_id>/model`` or ``models:/<name>@<alias>``."""
        from pipeline import tracking

        uri = str(uri)
        if _mlflow_uri(uri):
            import mlflow

            mlflow.set_tracking_uri(tracking.tracking_uri())
        elif _URI_SCHEME.match(uri):
            raise ModelLoadError(
                f"unknown model URI {uri!r}: expected a model folder, runs:/<run_id>/model or models:/<name>@<alias>"
            )
        return cls(load_model(tracking.resolve_model_uri(uri)), uri)

    @property
    def labels(self) -> list[str]:
        return self.model.labels

    def predict(self, rows) -> list[dict[str, Any]]:
        """A label and a probability per label for each (text, actor, target) row."""
        return self.model.predict(rows)

    def analyze(self, text: str, doc_id: str = "doc", date: str | None = None) -> list[Prediction]:
        """Every mentioned actor x every target in every sentence of ``text`` (furniture skipped)."""
        return list(self.predict_documents([Document(doc_id, text, date)]))

    # -- the long-sentence rule

    def _fits(self, text: str, actor: str) -> bool:
        return all(self.model.fits(Row(text, actor, target)) for target in self.task.target_ids)

    def fit_text(self, text: str, actor: str, mention: tuple[int, int]) -> tuple[str, bool]:
        """``text``, or the largest word window around ``mention`` that fits the model; and whether cut."""
        if self._fits(text, actor):
            return text, False
        words = [m.span() for m in re.finditer(r"\S+", text)]
        first = next(i for i, (s, e) in enumerate(words) if e > mention[0])
        last = max(i for i, (s, e) in enumerate(words) if s < mention[1])
        core = last - first + 1

        def window(size: int) -> str:
            lo = max(0, min(first - (size - core) // 2, len(words) - size))
            return text[words[lo][0] : words[lo + size - 1][1]]

        # Binary search for the largest window: a wider window is a superset of a narrower one.
        lo, hi = core, len(words)
        if not self._fits(window(core), actor):
            return window(core), True  # the mention alone is too long: the tokenizer truncates it
        while lo < hi:
            mid = (lo + hi + 1) // 2
            lo, hi = (mid, hi) if self._fits(window(mid), actor) else (lo, mid - 1)
        return window(lo), True

    # -- streaming

    def _pairs(self, doc: Document, sent: Sentence, stats: PredictStats) -> list[_Pair]:
        first_mention: dict[str, tuple[int, int]] = {}
        for m in self.matcher.mentions(sent.text):
            first_mention.setdefault(m.actor, (m.start, m.end))
        if first_mention:
            stats.sentences_with_actors += 1
        out = []
        for actor, span in first_mention.items():
            text, truncated = self.fit_text(sent.text, actor, span)
            stats.truncated += truncated * len(self.task.target_ids)
            out += [_Pair(doc, sent, actor, target, text, truncated) for target in self.task.target_ids]
        return out

    def _classify(self, pairs: list[_Pair]) -> Iterator[Prediction]:
        if not pairs:
            return
        probs = self.model.predict_proba([Row(p.text, p.actor, p.target) for p in pairs])
        labels = self.labels
        for pair, row in zip(pairs, probs):
            doc, sent = pair.doc, pair.sent
            yield Prediction(
                doc_id=doc.doc_id, sentence_id=sent.id, start=sent.start, end=sent.end, sentence=sent.text,
                actor=pair.actor, target=pair.target, label=labels[int(np.argmax(row))],
                probs={lab: round(float(v), 6) for lab, v in zip(labels, row)},
                truncated=pair.truncated, encoding_replaced=doc.encoding_replaced, date=doc.date,
            )

    def predict_documents(
        self, documents: Iterable[Document], batch_size: int = DEFAULT_BATCH_SIZE, stats: PredictStats | None = None
    ) -> Iterator[Prediction]:
        """Predictions for a stream of documents, classified ``batch_size`` pairs at a time.

        Only one batch of pending pairs is held at once, so memory does not grow with the input.
        """
        stats = stats if stats is not None else PredictStats()
        pending: list[_Pair] = []
        for doc in documents:
            stats.documents += 1
            stats.encoding_replaced += doc.encoding_replaced
            sentences = segment(doc.text, doc.doc_id)
            stats.empty_documents += not sentences
            for sent in sentences:
                if sent.furniture:
                    stats.furniture += 1
                    continue
                stats.sentences += 1
                pending += self._pairs(doc, sent, stats)
                while len(pending) >= batch_size:
                    batch, pending = pending[:batch_size], pending[batch_size:]
                    stats.pairs += len(batch)
                    yield from self._classify(batch)
        stats.pairs += len(pending)
        yield from self._classify(pending)


# ------------------------------------------------------------------ output files


class OutputFileError(ValueError):
    """An output path the predictions cannot be written to."""


def output_format(path: str | Path) -> str:
    """``jsonl`` or ``csv`` from the output file's extension."""
    fmt = Path(path).suffix.lower().lstrip(".")
    if fmt not in ("jsonl", "csv"):
        raise OutputFileError(f"output {path}: expected a .jsonl or .csv file name, found {Path(path).suffix!r}")
    return fmt


class PredictionWriter:
    """Writes predictions as JSONL or CSV (by the file's extension) into a temporary file
    beside ``path``; the file is renamed into place only when the block ends without error."""

    def __init__(self, path: str | Path, labels: list[str], model_uri: str):
        self.path = Path(path)
        self.format = output_format(self.path)
        self.labels = labels
        self.model_uri = model_uri
        self.columns = ["doc_id", "sentence_id", "start", "end", "sentence", "actor", "target", "label",
                        *(f"prob_{lab}" for lab in labels), "truncated", "encoding_replaced", "date", "model"]
        self.count = 0

    def __enter__(self) -> "PredictionWriter":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, self._tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp")
        self._fh = os.fdopen(fd, "w", encoding="utf-8", newline="")
        if self.format == "csv":
            self._csv = csv.DictWriter(self._fh, self.columns)
            self._csv.writeheader()
        return self

    def write(self, pred: Prediction) -> None:
        record = pred.to_record() | {"model": self.model_uri}
        if self.format == "jsonl":
            self._fh.write(json.dumps(record, ensure_ascii=False) + "\n")
        else:
            probs = record.pop("probs")
            self._csv.writerow(record | {f"prob_{lab}": probs[lab] for lab in self.labels})
        self.count += 1

    def __exit__(self, exc_type, exc, tb) -> None:
        self._fh.close()
        if exc_type is None:
            os.chmod(self._tmp, 0o644)  # mkstemp makes it private; an output file is shared like any other
            os.replace(self._tmp, self.path)
        else:
            Path(self._tmp).unlink(missing_ok=True)


def read_predictions(path: str | Path) -> list[dict[str, Any]]:
    """The records of a JSONL prediction file (for tests and notebooks)."""
    with Path(path).open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


@dataclass
class PredictResult:
    output: Path
    stats: PredictStats
    report_files: list[Path] = field(default_factory=list)


def run_predict(
    input_path: str | Path,
    output_path: str | Path,
    model_uri: str,
    report_dir: str | Path | None = None,
    encoding_errors: EncodingErrors = "strict",
    batch_size: int = DEFAULT_BATCH_SIZE,
    classifier: StanceClassifier | None = None,
) -> PredictResult:
    """Stream the documents of ``input_path`` through the model into ``output_path``.

    A progress bar (tqdm) shows on stderr only when stderr is a terminal and only after
    the first two seconds, so short runs and logs stay clean.
    """
    from tqdm.auto import tqdm

    from pipeline.report import StanceReport

    output_format(output_path)  # fail before the model loads
    clf = classifier or StanceClassifier.load(model_uri)
    start = time.perf_counter()  # after loading: the figures are about classifying
    documents = read_documents(input_path, encoding_errors)  # checks the input before any output exists
    stats = PredictStats()
    report = StanceReport(clf.task) if report_dir is not None else None
    with PredictionWriter(output_path, clf.labels, clf.uri or model_uri) as writer, \
            tqdm(documents, desc="predict", unit="doc", disable=None, delay=2, file=sys.stderr) as bar:
        for pred in clf.predict_documents(bar, batch_size, stats):
            writer.write(pred)
            if report is not None:
                report.add(pred)
    stats.seconds = time.perf_counter() - start
    files = report.write(report_dir, clf.uri or model_uri) if report is not None else []
    return PredictResult(Path(output_path), stats, files)
