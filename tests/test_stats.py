import json
import subprocess
import sys

from pipeline.config import load_config
from pipeline.data.stats import corpus_stats, format_stats
from pipeline.data.validate import load_records
from tests.conftest import write_jsonl


def test_counts_on_a_hand_checked_corpus(tmp_path):
    lab = lambda a, t, label: {"actor": a, "target": t, "label": label}
    recs = [
        {
            "id": "d1-000",
            "doc_id": "d1",
            "text": "x",
            "labels": [lab("macron", "concessions", "favor"), lab("macron", "integrity", "none")],
        },
        {"id": "d1-001", "doc_id": "d1", "text": "y", "labels": [lab("putin", "concessions", "against")]},
        {"id": "d2-000", "doc_id": "d2", "text": "z", "labels": [], "furniture": True},
    ]
    path = write_jsonl(tmp_path / "c.jsonl", recs)
    config = load_config(
        "configs/base.yaml",
        {"data.annotations": str(path), "data.documents": None, "data.metadata": None, "data.complete_labels": False},
    )
    stats = corpus_stats(load_records(config), config.task)
    assert stats["units"] == {"text": 2, "furniture": 1, "total": 3}
    assert stats["labels"] == {"favor": 1, "against": 1, "none": 1, "total": 3}
    assert stats["by_target"]["concessions"] == {"favor": 1, "against": 1, "none": 0, "total": 2}
    assert stats["by_actor"] == {
        "macron": {"favor": 1, "against": 0, "none": 1, "total": 2},
        "putin": {"favor": 0, "against": 1, "none": 0, "total": 1},
    }
    assert stats["by_document"]["d2"]["total"] == 0
    text = format_stats(stats, config.task)
    assert "concessions" in text and "macron" in text


def test_stats_command_prints_and_writes_the_file(tmp_path):
    out = tmp_path / "stats.json"
    res = subprocess.run(
        [sys.executable, "-m", "pipeline", "stats", "--output", str(out)], capture_output=True, text=True
    )
    assert res.returncode == 0, res.stderr
    written = json.loads(out.read_text())
    assert written["labels"]["total"] == sum(v["total"] for v in written["by_target"].values())
    assert "negotiations" in res.stdout
    assert not list(tmp_path.glob(".*.tmp"))
