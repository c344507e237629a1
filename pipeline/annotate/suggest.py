"""``make suggest``: the N sentences of new articles most worth annotating, handed to Label
Studio and doccano with the model's labels as pre-annotations.

The articles are segmented and their actors attributed as ``make predict`` does (the same
``StanceClassifier``); every (sentence, actor, target) pair is scored by one model or a
committee (pipeline/annotate/select.py), a sentence by its most uncertain pair, and the N
picked are diverse. The output folder holds:

* ``tasks.json`` and ``label_config.xml``: Label Studio's import file and labelling config;
* ``doccano.jsonl``: the same sentences for doccano;
* ``scaffold.jsonl``: the corpus schema with the model's labels pre-filled;
* ``scores.csv``: every candidate sentence, its scores, and whether it was picked.

The selection is an MLflow run (strategy, N, models, diversity; score figures; scores.csv).
Only the best ``pool`` candidates by score are kept in memory for the diverse pick, so a
large archive streams through.
"""

from __future__ import annotations

import csv
import heapq
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pipeline.annotate.select import (
    DEFAULT_DIVERSITY,
    DEFAULT_STRATEGY,
    SelectionError,
    check_strategy,
    diverse_top,
    pair_scores,
)
from pipeline.annotate.suggested import Suggested
from pipeline.data.documents import read_documents
from pipeline.files import atomic_dir, atomic_file, refuse_existing
from pipeline.inference.classifier import StanceClassifier
from pipeline.inference.records import PredictStats
from pipeline.process import check_stop

DEFAULT_N = 100
EXPERIMENT = "annotation-suggestions"
SCORE_COLUMNS = ["doc_id", "sentence_id", "score", "pairs", "actors", "picked", "rank", "text"]


@dataclass
class Candidate:
    """A sentence with at least one attributed actor, and the model's view of its pairs."""

    doc_id: str
    sentence_id: str
    start: int
    end: int
    text: str
    date: str | None
    pairs: list[tuple[str, str, str, np.ndarray]] = field(default_factory=list)  # actor, target, label, probs
    mentions: dict[str, list[list[int]]] = field(default_factory=dict)
    via: dict[str, str] = field(default_factory=dict)
    score: float = 0.0

    def to_suggested(self, rank: int, strategy: str, model: str, labels: list[str]) -> Suggested:
        record = {
            "id": self.sentence_id,
            "doc_id": self.doc_id,
            "start": self.start,
            "end": self.end,
            "text": self.text,
            "furniture": False,
            "labels": [{"actor": a, "target": t, "label": lab} for a, t, lab, _ in self.pairs],
            "meta": {"suggest": {"rank": rank, "score": round(self.score, 6), "strategy": strategy, "model": model}},
        }
        if self.date:
            record["date"] = self.date
        probs: dict[str, dict[str, dict[str, float]]] = {}
        for a, t, _, p in self.pairs:
            probs.setdefault(a, {})[t] = {lab: round(float(v), 6) for lab, v in zip(labels, p)}
        return Suggested(record, dict(self.mentions), probs, dict(self.via))


@dataclass
class SuggestResult:
    output: Path
    picked: list[Suggested]
    stats: PredictStats  # documents, sentences, pairs; sentences_with_actors: the candidates
    run_id: str | None


def load_committee(models: list[str], runtime: str | None = None, task=None) -> list[StanceClassifier]:
    """The first model's task (or ``task``, a task file: actors, targets) is everyone's; the
    models' labels must agree."""
    if not models:
        raise SelectionError("MODEL: expected a model (or several, comma-separated), found none")
    committee = [StanceClassifier.load(uri, task=task, runtime=runtime) for uri in models]
    first = committee[0]
    for clf in committee[1:]:
        if clf.labels != first.labels:
            raise SelectionError(f"model {clf.uri}: labels {clf.labels} differ from {first.uri}'s {first.labels}")
        clf.model.use_task(first.task)
    return committee


def _unique_documents(documents, input_path):
    """Sentence ids are ``<doc_id>-NNN``: two documents with one id would merge their sentences."""
    seen: set[str] = set()
    for doc in documents:
        if doc.doc_id in seen:
            raise SelectionError(
                f"{input_path}: doc_id {doc.doc_id!r} is used by two documents; expected one id per "
                "document (sentence ids are <doc_id>-NNN)"
            )
        seen.add(doc.doc_id)
        yield doc


def _excluded(paths) -> set[str]:
    """Unit ids already in these corpus files (JSONL, an ``id`` per line): not suggested again."""
    ids: set[str] = set()
    for path in paths or ():
        with open(path, encoding="utf-8") as f:
            for line_no, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    ids.add(str(json.loads(line)["id"]))
                except (json.JSONDecodeError, KeyError, TypeError) as exc:
                    raise SelectionError(
                        f"{path}:{line_no}: expected a corpus record with an id, found {exc!r}"
                    ) from None
    return ids


def _score_batch(committee: list[StanceClassifier], batch, strategy: str, rng) -> tuple[np.ndarray, np.ndarray]:
    rows = [p.row for p in batch]
    members = [clf.model.predict_proba(clf.model.prepare(rows)) for clf in committee]
    return np.mean(np.stack(members), axis=0), pair_scores(members, strategy, rng)


def _candidates(committee, documents, strategy: str, seed: int, stats: PredictStats):
    """Candidates in document order, each complete (all its pairs) when yielded."""
    first = committee[0]
    rng = np.random.default_rng(seed)
    current: Candidate | None = None
    for batch in first.pair_batches(documents, stats=stats):
        check_stop()
        probs, scores = _score_batch(committee, batch, strategy, rng)
        labels = first.task.predicted(probs)
        stats.pairs += len(batch)
        for pair, p, s, label in zip(batch, probs, scores, labels):
            sent = pair.sent
            if current is None or current.sentence_id != sent.id or current.doc_id != pair.doc.doc_id:
                if current is not None:
                    yield current
                current = Candidate(pair.doc.doc_id, sent.id, sent.start, sent.end, sent.text, pair.doc.date)
            actor = pair.row.actor
            current.pairs.append((actor, pair.row.target, label, p))
            current.mentions.setdefault(actor, [list(span) for span in (pair.row.spans or ())])
            current.via.setdefault(actor, pair.via)
            current.score = max(current.score, float(s))
    if current is not None:
        yield current


def _scores_row(c: Candidate) -> dict:
    actors = ",".join(dict.fromkeys(a for a, *_ in c.pairs))
    return {"doc_id": c.doc_id, "sentence_id": c.sentence_id, "score": round(c.score, 6), "pairs": len(c.pairs)} | {
        "actors": actors,
        "text": c.text,
    }


def _collect(committee, documents, strategy, seed, pool: int, scores_file, stats, skip: set[str]):
    """Stream the candidates: every one into scores.csv (unpicked for now), the best ``pool`` kept."""
    writer = csv.DictWriter(scores_file, fieldnames=SCORE_COLUMNS)
    writer.writeheader()
    heap: list[tuple[float, int, Candidate]] = []  # a min-heap: the worst kept candidate on top
    for i, cand in enumerate(
        c for c in _candidates(committee, documents, strategy, seed, stats) if c.sentence_id not in skip
    ):
        writer.writerow(_scores_row(cand) | {"picked": False, "rank": ""})
        item = (cand.score, -i, cand)  # ties: the earlier sentence is kept
        if len(heap) < pool:
            heapq.heappush(heap, item)
        elif item[:2] > heap[0][:2]:
            heapq.heapreplace(heap, item)
    return [c for _, _, c in sorted(heap, key=lambda x: (-x[0], -x[1]))]


def _write_outputs(folder: Path, picked: list[Suggested], task, model: str) -> None:
    from pipeline.annotate import doccano, labelstudio

    labelstudio.write_tasks(picked, task, folder / "tasks.json", model)
    (folder / "label_config.xml").write_text(labelstudio.label_config(task), encoding="utf-8")
    doccano.write_jsonl(picked, task, folder / "doccano.jsonl")
    with open(folder / "scaffold.jsonl", "w", encoding="utf-8") as f:
        for s in picked:
            f.write(json.dumps(s.record, ensure_ascii=False) + "\n")


def _mark_picked(path: Path, picked: list[Suggested]) -> None:
    """scores.csv was streamed with every candidate unpicked: set picked and rank, row by row
    into a second file (a large archive's scores never sit in memory)."""
    ranks = {(s.record["doc_id"], s.id): s.record["meta"]["suggest"]["rank"] for s in picked}
    with open(path, encoding="utf-8", newline="") as src, atomic_file(path, newline="") as dst:
        writer = csv.DictWriter(dst, fieldnames=SCORE_COLUMNS)
        writer.writeheader()
        for row in csv.DictReader(src):
            rank = ranks.get((row["doc_id"], row["sentence_id"]))
            row["picked"], row["rank"] = rank is not None, rank if rank is not None else ""
            writer.writerow(row)


def suggest(
    input_path: str | Path,
    output: str | Path,
    models: list[str],
    n: int = DEFAULT_N,
    strategy: str = DEFAULT_STRATEGY,
    diversity: float = DEFAULT_DIVERSITY,
    seed: int = 0,
    pool: int | None = None,
    runtime: str | None = None,
    overwrite: bool = False,
    log: bool = True,
    task: str | Path | None = None,
    exclude: list[str | Path] | None = None,
    encoding_errors: str = "strict",
) -> SuggestResult:
    """Pick the ``n`` sentences of ``input_path`` most worth annotating into the folder ``output``."""
    if n < 1:
        raise SelectionError(f"N: expected a positive number of sentences, found {n}")
    if not 0 <= diversity < 1:
        raise SelectionError(f"diversity: expected a number in [0, 1), found {diversity}")
    check_strategy(strategy, len(models))
    refuse_existing(output, overwrite, "suggestions folder", folder=True)
    if log:  # before hours of scoring, not after
        _tracking_uri()
    skip = _excluded(exclude)
    committee = load_committee(models, runtime, task)
    _check_controls(committee[0].task)
    documents = _unique_documents(read_documents(input_path, encoding_errors), input_path)
    stats = PredictStats()
    model_desc = ",".join(str(m) for m in models)
    with atomic_dir(output) as folder:
        with open(folder / "scores.csv", "w", encoding="utf-8", newline="") as f:
            pool_size = pool or max(10 * n, 1000)
            kept = _collect(committee, documents, strategy, seed, pool_size, f, stats, skip)
        if not kept:
            actors = ", ".join(committee[0].task.actor_ids)
            raise SelectionError(
                f"{input_path}: no sentence names an actor of the task ({actors})"
                + (" that is not already in the excluded corpus" if skip else "")
                + "; nothing to suggest, nothing written"
            )
        scores, texts = np.array([c.score for c in kept]), [c.text for c in kept]
        order = diverse_top(scores, texts, n, _diversity(strategy, diversity))
        labels = committee[0].labels
        picked = [kept[i].to_suggested(rank + 1, strategy, model_desc, labels) for rank, i in enumerate(order)]
        _mark_picked(folder / "scores.csv", picked)
        _write_outputs(folder, picked, committee[0].task, model_desc)
        params = {"strategy": strategy, "n": n, "diversity": _diversity(strategy, diversity), "seed": seed}
        run_id = _log_run(folder, models, params, kept, picked, stats, input_path) if log else None
    return SuggestResult(Path(output), picked, stats, run_id)


def _tracking_uri() -> str:
    from pipeline.experiments.tracking import check_server, tracking_uri

    uri = tracking_uri()
    check_server(uri)
    return uri


def _check_controls(task) -> None:
    from pipeline.annotate import doccano, labelstudio

    try:  # what the writers would refuse, refused before scoring, not after
        labelstudio.controls(task)
        doccano.check_ids(task)
    except ValueError as exc:
        raise SelectionError(str(exc)) from None


def _diversity(strategy: str, diversity: float) -> float:
    return 0.0 if strategy == "random" else diversity  # a random draw is as diverse as the corpus


def _log_run(folder, models, params: dict, kept, picked, stats, input_path) -> str:
    import mlflow

    mlflow.set_tracking_uri(_tracking_uri())
    mlflow.set_experiment(EXPERIMENT)
    picked_scores = [s.record["meta"]["suggest"]["score"] for s in picked]
    with mlflow.start_run(run_name=f"suggest-{params['strategy']}-{params['n']}", tags={"kind": "suggest"}) as run:
        mlflow.log_params(
            params | {"models": ",".join(map(str, models)), "committee_size": len(models), "input": str(input_path)}
        )
        mlflow.log_metrics(
            {"documents": stats.documents, "sentences": stats.sentences, "candidates": stats.sentences_with_actors}
            | {"pairs": stats.pairs, "picked": len(picked)}
            | {"picked_score_mean": float(np.mean(picked_scores)) if picked_scores else 0.0}
            | {"picked_score_min": float(np.min(picked_scores)) if picked_scores else 0.0}
            | {"pool_score_mean": float(np.mean([c.score for c in kept])) if kept else 0.0}
        )
        for name in ("scores.csv", "label_config.xml", "tasks.json"):
            mlflow.log_artifact(str(folder / name), "suggestions")
    print(f"logged to MLflow: experiment {EXPERIMENT}, run {run.info.run_id}", file=sys.stderr)
    return run.info.run_id
