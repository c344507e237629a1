"""Prediction records and the files they go to (JSONL or CSV, written atomically)."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from pipeline.files import atomic_file


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
    via: str = "name"  # how the actor was found: name, alias, pronoun, quote
    truncated: bool = False
    encoding_replaced: bool = False
    date: str | None = None

    def to_record(self) -> dict[str, Any]:
        # Shallow: asdict's recursive copy took about a third of the predict path's own time (profiled).
        record = {f.name: getattr(self, f.name) for f in fields(self)}
        record["probs"] = dict(self.probs)
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
    via: dict[str, int] = field(default_factory=dict)  # pairs by how their actor was found

    def line(self) -> str:
        rate = self.pairs / self.seconds if self.seconds > 0 else 0.0
        return (
            f"{self.documents} documents, {self.sentences} sentences ({self.sentences_with_actors} with an actor), "
            f"{self.pairs} pairs classified in {self.seconds:.1f} s ({rate:.1f} pairs/s)"
        )


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
        self.columns = [
            "doc_id",
            "sentence_id",
            "start",
            "end",
            "sentence",
            "actor",
            "target",
            "label",
            *(f"prob_{lab}" for lab in labels),
            "via",
            "truncated",
            "encoding_replaced",
            "date",
            "model",
        ]
        self.count = 0

    def __enter__(self) -> PredictionWriter:
        self._ctx = atomic_file(self.path, newline="")
        self._fh = self._ctx.__enter__()
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
        self._ctx.__exit__(exc_type, exc, tb)


def read_predictions(path: str | Path) -> list[dict[str, Any]]:
    """The records of a JSONL prediction file (for tests and notebooks)."""
    with Path(path).open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]
