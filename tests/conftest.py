"""Shared fixtures: tiny tasks and corpora built in code."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _project_root(monkeypatch):
    """Config paths are relative to the project root, as when run through make."""
    monkeypatch.chdir(ROOT)


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def write_yaml(path: Path, obj: dict) -> Path:
    path.write_text(yaml.safe_dump(obj, sort_keys=False), encoding="utf-8")
    return path


TWEET_TASK = {
    "labels": ["FAVOR", "AGAINST", "NONE"],
    "none_label": "NONE",
    "actors": [{"id": "author", "name": "the tweet's author"}],
    "targets": [
        {"id": "mayor", "name": "Mayor Smith", "wording": "Mayor Smith"},
        {"id": "bike_lanes", "name": "Bike lanes", "wording": "building more bike lanes"},
    ],
}


def tweet_records(n_per_split: dict[str, int] | None = None) -> list[dict]:
    """A tiny tweet corpus: one unit per tweet, the author's stance on one target."""
    n_per_split = n_per_split or {"train": 12, "dev": 4, "test": 6}
    labels = ["FAVOR", "AGAINST", "NONE"]
    out = []
    i = 0
    for split, n in n_per_split.items():
        for _ in range(n):
            target = "mayor" if i % 2 else "bike_lanes"
            out.append(
                {
                    "id": f"tw{i:03d}",
                    "text": f"tweet number {i} about {target}",
                    "labels": [{"actor": "author", "target": target, "label": labels[i % 3]}],
                    "split": split,
                }
            )
            i += 1
    return out


@pytest.fixture
def tweet_config(tmp_path):
    """A config file for the tweet corpus, extending nothing: a new corpus needs only this."""
    corpus = write_jsonl(tmp_path / "tweets.jsonl", tweet_records())
    cfg = {
        "name": "tweets",
        "task": TWEET_TASK,
        "data": {"annotations": str(corpus), "group_by": "id", "complete_labels": False, "dev_size": 0.25},
    }
    return write_yaml(tmp_path / "tweets.yaml", cfg)
