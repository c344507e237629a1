"""An NLI model's classes, read from its config: which one is entailment, and how each class maps
to a task label (the zero-shot backend's ``nli`` method)."""

from __future__ import annotations

import numpy as np

from pipeline.models.encoders import ModelLoadError


def entailment_index(hf_config, name: str) -> int:
    """The entailment class of an NLI model, from its ``id2label`` (case-insensitive 'entailment')."""
    id2label = {int(i): str(lab) for i, lab in (hf_config.id2label or {}).items()}
    found = [i for i, lab in id2label.items() if lab.strip().lower() == "entailment"]
    if len(found) != 1:
        raise ModelLoadError(
            f"{name} is not an NLI model: method 'nli' needs exactly one 'entailment' class in its id2label, "
            f"found {id2label} (use zeroshot.method: similarity for a sentence encoder)"
        )
    return found[0]


def nli_label_matrix(hf_config, mapping: dict[str, str], labels: list[str], name: str) -> np.ndarray:
    """(model classes, task labels) 0/1 matrix sending each NLI class to its mapped task label."""
    id2label = {int(i): str(lab).strip().lower() for i, lab in hf_config.id2label.items()}
    wanted = {k.strip().lower(): v for k, v in mapping.items()}
    unmapped = sorted(lab for lab in id2label.values() if lab not in wanted)
    unknown = sorted(set(wanted) - set(id2label.values()))
    if unmapped or unknown:
        raise ModelLoadError(
            f"zeroshot.nli_labels {mapping} does not fit {name}, whose classes are {sorted(id2label.values())}: "
            f"unmapped {unmapped}, not in the model {unknown}"
        )
    matrix = np.zeros((len(id2label), len(labels)))
    for i, lab in id2label.items():
        matrix[i, labels.index(wanted[lab])] = 1.0
    return matrix
