"""Stance report of a prediction run: counts, net scores, evidence, a heatmap, a DNA export.

Labels, actors and targets come from the model's task. The first two stance labels (the
task's labels without ``none_label``, in task order: ``favor``, ``against`` by default) are
the positive and the negative pole.

* Net stance score of an actor on a target: ``(positive - negative) / pairs``, where
  ``pairs`` counts every classified (sentence, actor, target) of that actor and target,
  ``none`` included. It runs from -1 (against in every sentence that mentions the actor)
  to +1 (favor in every one); 0 means no position taken, or as much favor as against.
  Dividing by all mentions rather than by stance-bearing ones keeps one stray stance
  among many neutral mentions from reading as a firm +1 or -1.
* Strongest evidence: for each actor x target x stance label, the ``top_k`` sentences
  predicted with that label, by that label's probability.
* DNA export (Discourse Network Analyzer statements): one row per stance-bearing
  prediction, ``actor`` (display name), ``concept`` (target name), ``agreement`` 1 for the
  positive pole and 0 for the negative pole, ``date`` (empty if unknown), then ``doc_id``
  and ``sentence_id`` to trace it back; ``none`` predictions are left out.

Files written to the report folder: ``stance_counts.csv``, ``evidence.csv``, ``report.md``,
``heatmap.png``, ``dna.csv`` (each to a temporary file first, then renamed).
"""

from __future__ import annotations

import csv
import heapq
import io
import itertools
import textwrap
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from pipeline.config import TaskConfig
from pipeline.files import atomic_dir
from pipeline.inference.records import Prediction

FILES = ("stance_counts.csv", "evidence.csv", "report.md", "heatmap.png", "dna.csv")


def _csv_bytes(columns: list[str], rows: list[dict[str, Any]]) -> bytes:
    buf = io.StringIO(newline="")
    writer = csv.DictWriter(buf, columns)
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue().encode("utf-8")


class StanceReport:
    """Accumulates predictions one at a time (memory grows with actors x targets, not input)."""

    def __init__(self, task: TaskConfig, top_k: int = 3):
        self.task = task
        self.top_k = top_k
        stance = task.stance_labels
        # Net score and DNA agreement need a positive and a negative pole.
        self.poles = (stance[0], stance[1]) if len(stance) >= 2 else None
        self.counts: dict[tuple[str, str], Counter] = {}
        self._evidence: dict[tuple[str, str, str], list] = {}
        self._order = itertools.count()  # ties in probability keep arrival order
        self.dna: list[tuple[str, str, int, str, str, str]] = []

    def add(self, pred: Prediction) -> None:
        key = (pred.actor, pred.target)
        self.counts.setdefault(key, Counter())[pred.label] += 1
        if pred.label == self.task.none_label:
            return
        heap = self._evidence.setdefault((pred.actor, pred.target, pred.label), [])
        item = (pred.probs[pred.label], -next(self._order), pred)
        if len(heap) < self.top_k:
            heapq.heappush(heap, item)
        else:
            heapq.heappushpop(heap, item)
        if self.poles is not None and pred.label in self.poles:
            agreement = 1 if pred.label == self.poles[0] else 0
            self.dna.append((pred.actor, pred.target, agreement, pred.date or "", pred.doc_id, pred.sentence_id))

    # -- tables

    def net_score(self, counts: Counter) -> float:
        n = sum(counts.values())
        if self.poles is None or n == 0:
            return float("nan")
        return (counts[self.poles[0]] - counts[self.poles[1]]) / n

    def table(self) -> list[dict[str, Any]]:
        """One row per actor x target with at least one prediction, in task order."""
        rows = []
        for actor in self.task.actors:
            for target in self.task.targets:
                counts = self.counts.get((actor.id, target.id))
                if not counts:
                    continue
                rows.append(
                    {
                        "actor": actor.id,
                        "actor_name": actor.name,
                        "target": target.id,
                        "target_name": target.name,
                        **{lab: counts[lab] for lab in self.task.labels},
                        "pairs": sum(counts.values()),
                        "net_score": round(self.net_score(counts), 4),
                    }
                )
        return rows

    def evidence(self) -> list[dict[str, Any]]:
        """The strongest sentences per actor x target x stance label, best first."""
        rows = []
        for actor in self.task.actors:
            for target in self.task.targets:
                for label in self.task.stance_labels:
                    heap = self._evidence.get((actor.id, target.id, label), [])
                    for rank, (prob, _, pred) in enumerate(sorted(heap, reverse=True), start=1):
                        rows.append(
                            {
                                "actor": actor.id,
                                "actor_name": actor.name,
                                "target": target.id,
                                "target_name": target.name,
                                "label": label,
                                "rank": rank,
                                "prob": round(prob, 4),
                                "doc_id": pred.doc_id,
                                "sentence_id": pred.sentence_id,
                                "date": pred.date or "",
                                "sentence": pred.sentence,
                            }
                        )
        return rows

    def matrix(self) -> tuple[list[str], np.ndarray, np.ndarray]:
        """Actor ids with any prediction, their net scores (actors x targets; NaN: never
        mentioned) and pair counts."""
        actors = [a.id for a in self.task.actors if any((a.id, t) in self.counts for t in self.task.target_ids)]
        scores = np.full((len(actors), len(self.task.targets)), np.nan)
        n = np.zeros_like(scores, dtype=int)
        for i, actor in enumerate(actors):
            for j, target in enumerate(self.task.target_ids):
                counts = self.counts.get((actor, target))
                if counts:
                    scores[i, j], n[i, j] = self.net_score(counts), sum(counts.values())
        return actors, scores, n

    # -- outputs

    def heatmap(self) -> Figure:
        """Actors x targets, net stance score in a diverging colormap centred at 0, cells annotated."""
        actors, scores, n = self.matrix()
        targets = self.task.targets
        fig = Figure(figsize=(2.6 + 1.9 * len(targets), 1.6 + 0.55 * max(len(actors), 1)), layout="constrained")
        ax = fig.subplots()
        if not actors:
            ax.text(0.5, 0.5, "no actor of the task is mentioned", ha="center", va="center")
            ax.set_axis_off()
            return fig
        # Fixed -1..1 range: centred at 0, and two reports' colours mean the same.
        im = ax.imshow(np.ma.masked_invalid(scores), cmap="RdBu", vmin=-1, vmax=1, aspect="auto")
        ax.set_facecolor("0.92")  # never-mentioned cells
        pos, neg = self.poles or ("+", "-")
        fig.colorbar(im, ax=ax, label="net stance score", shrink=0.9)
        ax.set_xticks(range(len(targets)), [textwrap.fill(t.name, 16) for t in targets])
        ax.set_yticks(range(len(actors)), [self.task.actor(a).name for a in actors])
        ax.xaxis.tick_top()
        for i, j in np.ndindex(scores.shape):
            if n[i, j] == 0:
                ax.text(j, i, "not mentioned", ha="center", va="center", color="0.45", fontsize=8)
                continue
            counts = self.counts[(actors[i], self.task.target_ids[j])]
            detail = f"{counts[pos]} {pos} / {counts[neg]} {neg} of {n[i, j]}" if self.poles else f"n={n[i, j]}"
            ax.text(
                j,
                i,
                f"{scores[i, j]:+.2f}\n{detail}",
                ha="center",
                va="center",
                fontsize=8,
                color="white" if abs(scores[i, j]) > 0.55 else "black",
            )
        ax.set_title(
            f"Net stance score = ({pos} - {neg}) / pairs   (blue: {pos}, red: {neg}, grey: not mentioned)", fontsize=10
        )
        return fig

    def markdown(self, model_uri: str) -> str:
        labels = self.task.labels
        pos, neg = self.poles or ("?", "?")
        total = sum(sum(c.values()) for c in self.counts.values())
        lines = [
            "# Stance report",
            "",
            f"Model: `{model_uri}`. {total} (sentence, actor, target) pairs classified.",
            "",
            f"Net stance score = ({pos} - {neg}) / pairs, over every classified pair of the actor and target "
            f"({self.task.none_label} included): -1 = {neg} in every mention, +1 = {pos} in every mention, "
            "0 = no position or as much of both.",
            "",
            "![actor x target heatmap](heatmap.png)",
            "",
            "## Counts per actor x target",
            "",
            "| actor | target | " + " | ".join(labels) + " | pairs | net score |",
            "|---|---|" + "---|" * len(labels) + "---|---|",
        ]
        for row in self.table():
            lines.append(
                f"| {row['actor_name']} | {row['target_name']} | "
                + " | ".join(str(row[lab]) for lab in labels)
                + f" | {row['pairs']} | {row['net_score']:+.2f} |"
            )
        lines += ["", f"## Strongest evidence (top {self.top_k} per actor x target x stance)", ""]
        evidence = self.evidence()
        if not evidence:
            lines.append("No stance-bearing prediction.")
        for (actor, target, label), group in itertools.groupby(
            evidence, key=lambda r: (r["actor_name"], r["target_name"], r["label"])
        ):
            lines += [f"**{actor} - {target}: {label}**", ""]
            for r in group:
                text = r["sentence"].replace("\n", " ").replace("|", "\\|")
                lines.append(f"{r['rank']}. ({r['prob']:.2f}) {text} `{r['sentence_id']}`")
            lines.append("")
        lines += [f"DNA export: `dna.csv` (agreement 1 = {pos}, 0 = {neg}; {self.task.none_label} left out).", ""]
        return "\n".join(lines)

    def write(self, folder: str | Path, model_uri: str = "") -> list[Path]:
        """Write the report files (see the module docstring) into ``folder``, whole: they are written
        into a temporary folder beside it, which replaces ``folder`` when complete."""
        folder = Path(folder)
        labels = self.task.labels
        count_cols = ["actor", "actor_name", "target", "target_name", *labels, "pairs", "net_score"]
        evidence_cols = [
            "actor",
            "actor_name",
            "target",
            "target_name",
            "label",
            "rank",
            "prob",
            "doc_id",
            "sentence_id",
            "date",
            "sentence",
        ]
        dna_rows = [
            {
                "actor": self.task.actor(a).name,
                "concept": self.task.target(t).name,
                "agreement": agreement,
                "date": date,
                "doc_id": doc_id,
                "sentence_id": sid,
            }
            for a, t, agreement, date, doc_id, sid in self.dna
        ]
        png = io.BytesIO()
        self.heatmap().savefig(png, format="png", dpi=150)
        files = {
            "stance_counts.csv": _csv_bytes(count_cols, self.table()),
            "evidence.csv": _csv_bytes(evidence_cols, self.evidence()),
            "report.md": self.markdown(model_uri).encode("utf-8"),
            "heatmap.png": png.getvalue(),
            "dna.csv": _csv_bytes(["actor", "concept", "agreement", "date", "doc_id", "sentence_id"], dna_rows),
        }
        with atomic_dir(folder) as tmp:
            for name, data in files.items():
                (tmp / name).write_bytes(data)
        return [folder / name for name in files]
