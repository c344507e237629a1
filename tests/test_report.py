"""The stance report on hand-made predictions whose numbers are checked by hand."""

import csv

import numpy as np
import pytest

from pipeline.config import TaskConfig, load_config
from pipeline.inference.records import Prediction
from pipeline.inference.report import StanceReport
from tests.conftest import ROOT, TWEET_TASK

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def pred(sid, actor, target, label, p, date=None):
    """A prediction with probability ``p`` on ``label`` and the rest split over the others."""
    labels = ["favor", "against", "none"]
    probs = {lab: (p if lab == label else (1 - p) / 2) for lab in labels}
    return Prediction("doc", sid, 0, 10, f"sentence {sid}", actor, target, label, probs, date=date)


HAND_MADE = [
    pred("s1", "macron", "concessions", "favor", 0.9, date="2022-05-10"),
    pred("s2", "macron", "concessions", "favor", 0.7),
    pred("s3", "macron", "concessions", "against", 0.6),
    pred("s4", "macron", "concessions", "none", 0.8),
    pred("s1", "zelensky", "concessions", "against", 0.95, date="2022-05-10"),
    pred("s5", "zelensky", "concessions", "against", 0.55),
    pred("s5", "zelensky", "negotiations", "none", 0.9),
]


@pytest.fixture
def report():
    rep = StanceReport(load_config(ROOT / "configs/base.yaml").task, top_k=3)
    for p in HAND_MADE:
        rep.add(p)
    return rep


def read_csv(path):
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def test_counts_and_net_scores(report):
    # macron x concessions: 2 favor, 1 against, 1 none -> (2 - 1) / 4 = 0.25
    # zelensky x concessions: 2 against -> (0 - 2) / 2 = -1; zelensky x negotiations: 1 none -> 0
    table = {(r["actor"], r["target"]): r for r in report.table()}
    assert set(table) == {("macron", "concessions"), ("zelensky", "concessions"), ("zelensky", "negotiations")}
    assert {k: table[("macron", "concessions")][k] for k in ("favor", "against", "none", "pairs", "net_score")} == {
        "favor": 2,
        "against": 1,
        "none": 1,
        "pairs": 4,
        "net_score": 0.25,
    }
    assert table[("zelensky", "concessions")]["net_score"] == -1.0
    assert table[("zelensky", "negotiations")]["net_score"] == 0.0
    actors, scores, n = report.matrix()
    assert actors == ["macron", "zelensky"]
    assert np.array_equal(scores, [[0.25, np.nan, np.nan], [-1.0, np.nan, 0.0]], equal_nan=True)
    assert n.tolist() == [[4, 0, 0], [2, 0, 1]]


def test_strongest_evidence_is_ranked_by_the_labels_probability(report):
    rows = report.evidence()
    assert [(r["actor"], r["target"], r["label"], r["rank"], r["sentence_id"], r["prob"]) for r in rows] == [
        ("macron", "concessions", "favor", 1, "s1", 0.9),
        ("macron", "concessions", "favor", 2, "s2", 0.7),
        ("macron", "concessions", "against", 1, "s3", 0.6),
        ("zelensky", "concessions", "against", 1, "s1", 0.95),
        ("zelensky", "concessions", "against", 2, "s5", 0.55),
    ]
    top1 = StanceReport(report.task, top_k=1)
    for p in HAND_MADE:
        top1.add(p)
    assert [(r["actor"], r["label"], r["sentence_id"]) for r in top1.evidence()] == [
        ("macron", "favor", "s1"),
        ("macron", "against", "s3"),
        ("zelensky", "against", "s1"),
    ]


def test_written_files(report, tmp_path):
    files = report.write(tmp_path / "rep", "models/x")
    assert [f.name for f in files] == ["stance_counts.csv", "evidence.csv", "report.md", "heatmap.png", "dna.csv"]
    counts = read_csv(tmp_path / "rep" / "stance_counts.csv")
    assert counts[0] == {
        "actor": "macron",
        "actor_name": "Emmanuel Macron",
        "target": "concessions",
        "target_name": "Territorial concessions",
        "favor": "2",
        "against": "1",
        "none": "1",
        "pairs": "4",
        "net_score": "0.25",
    }
    assert len(read_csv(tmp_path / "rep" / "evidence.csv")) == 5

    # DNA: favor -> 1, against -> 0, none left out; dates where known.
    dna = read_csv(tmp_path / "rep" / "dna.csv")
    assert [(r["actor"], r["concept"], r["agreement"], r["date"]) for r in dna] == [
        ("Emmanuel Macron", "Territorial concessions", "1", "2022-05-10"),
        ("Emmanuel Macron", "Territorial concessions", "1", ""),
        ("Emmanuel Macron", "Territorial concessions", "0", ""),
        ("Volodymyr Zelensky", "Territorial concessions", "0", "2022-05-10"),
        ("Volodymyr Zelensky", "Territorial concessions", "0", ""),
    ]

    md = (tmp_path / "rep" / "report.md").read_text()
    assert "| Emmanuel Macron | Territorial concessions | 2 | 1 | 1 | 4 | +0.25 |" in md
    assert "| Volodymyr Zelensky | Territorial concessions | 0 | 2 | 0 | 2 | -1.00 |" in md
    assert "1. (0.90) sentence s1 `s1`" in md and "![actor x target heatmap](heatmap.png)" in md

    png = tmp_path / "rep" / "heatmap.png"
    assert png.read_bytes()[:8] == PNG_SIGNATURE
    import matplotlib.image

    image = matplotlib.image.imread(png)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    assert not [p for p in (tmp_path / "rep").iterdir() if p.name.startswith(".")]


def test_poles_come_from_the_task_not_from_literals(tmp_path):
    task = TaskConfig.model_validate(TWEET_TASK)
    rep = StanceReport(task)
    probs = {"FAVOR": 0.8, "AGAINST": 0.1, "NONE": 0.1}
    rep.add(Prediction("t1", "t1-000", 0, 5, "Go bikes", "author", "bike_lanes", "FAVOR", probs))
    rep.add(
        Prediction(
            "t2",
            "t2-000",
            0,
            5,
            "No bikes",
            "author",
            "bike_lanes",
            "AGAINST",
            {"FAVOR": 0.1, "AGAINST": 0.8, "NONE": 0.1},
        )
    )
    rep.add(Prediction("t3", "t3-000", 0, 5, "Bikes", "author", "bike_lanes", "FAVOR", probs))
    assert rep.table()[0]["net_score"] == pytest.approx(1 / 3, abs=1e-4)
    rep.write(tmp_path)
    assert [r["agreement"] for r in read_csv(tmp_path / "dna.csv")] == ["1", "0", "1"]
    assert "(FAVOR - AGAINST) / pairs" in (tmp_path / "report.md").read_text()


def test_an_empty_report_still_writes_every_file(tmp_path):
    rep = StanceReport(load_config(ROOT / "configs/base.yaml").task)
    rep.write(tmp_path)
    assert read_csv(tmp_path / "stance_counts.csv") == [] and read_csv(tmp_path / "dna.csv") == []
    assert "No stance-bearing prediction." in (tmp_path / "report.md").read_text()
    assert (tmp_path / "heatmap.png").read_bytes()[:8] == PNG_SIGNATURE
