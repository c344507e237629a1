"""Shared fixtures: tiny tasks and corpora built in code."""

from __future__ import annotations

import json
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # read by huggingface_hub at import: tests never use the hub
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


# ---------------------------------------------------------------- tiny models and tracking

TINY_WORDS = [
    "macron",
    "zelensky",
    "putin",
    "kremlin",
    "kyiv",
    "on",
    "of",
    "to",
    "the",
    "a",
    "and",
    "in",
    "for",
    "with",
    "said",
    "says",
    "talks",
    "negotiations",
    "territorial",
    "concessions",
    "ukraine",
    "russia",
    "integrity",
    "by",
    "must",
    "will",
    "not",
    "no",
    "we",
    "are",
    "ready",
    "urged",
    "offer",
    "cede",
    "land",
    "peace",
    "table",
    "back",
    "return",
    "refuse",
    "refused",
    "support",
    "supports",
    "against",
    "favor",
    "mayor",
    "smith",
    "bike",
    "lanes",
    "building",
    "more",
    "tweet",
    "number",
    "about",
    "author",
    "s",
    "[",
    "]",
    ".",
    ",",
    '"',
    "'",
    ":",
    ";",
    "-",
    "(",
    ")",
]


def build_tiny_transformer(folder: Path, **config_kwargs) -> Path:
    """A 2-layer, 32-wide BERT with a word-level vocabulary, saved like a hub model.

    ``config_kwargs`` go to the BertConfig (``id2label=...`` makes an NLI-shaped head).
    """
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *dict.fromkeys(TINY_WORDS)]
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tokenizer = BertTokenizerFast(vocab_file=str(folder / "vocab.txt"), do_lower_case=True)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        **config_kwargs,
    )
    import torch

    torch.manual_seed(0)
    BertForSequenceClassification(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    return build_tiny_transformer(tmp_path_factory.mktemp("tiny") / "bert")


@pytest.fixture
def mlflow_store(tmp_path, monkeypatch):
    """A fresh SQLite tracking store for one test; nothing touches the project's mlflow.db."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    yield uri
    import mlflow

    while mlflow.active_run() is not None:
        mlflow.end_run()


def tiny_overrides(tmp_path: Path, model_dir: Path, **extra) -> dict:
    """Shrink a real config for tests: tiny model, 2 epochs, models in tmp, few resamples."""
    return {
        "model.base_model": str(model_dir),
        "model.max_length": 64,
        "training.epochs": 2,
        "training.batch_size": 16,
        "training.early_stopping_patience": 0,
        "training.threads": 1,
        "tracking.bootstrap_resamples": 50,
        "models_dir": str(tmp_path / "models"),
        "data.extra_train": [],  # the synthetic corpus trains the real model; tests train on the seeds
        **extra,
    }
