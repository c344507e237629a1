"""Which sentences to annotate next: uncertainty of the model (or a committee of models) per
(sentence, actor, target) pair, a score per sentence, and a diverse pick of the best.

* ``margin``: 1 - (p1 - p2), the gap between the two likeliest labels (Scheffer et al., 2001);
* ``entropy``: the entropy of the label distribution over log(k) labels;
* ``disagreement``: with two or more models, the Jensen-Shannon divergence of their
  distributions (query by committee: the generalised information radius, McCallum & Nigam
  1998), over log(k); with several models, margin and entropy read the committee's mean;
* ``random``: a seeded uniform draw, the baseline.

Every score is in [0, 1], higher is more worth annotating. A sentence scores its most
uncertain pair: one undecided (actor, target) is enough to make it worth reading.

Diversity: the pick is greedy maximal marginal relevance (Carbonell & Goldstein, 1998) over
TF-IDF cosine similarity of the sentences, ``(1 - diversity) * score - diversity * max
similarity to a sentence already picked``, so ten near-copies of one quote do not fill the
batch. Hand-written because it is a dozen lines over scikit-learn's vectoriser.
"""

from __future__ import annotations

import numpy as np

STRATEGIES = ("margin", "entropy", "disagreement", "random")
DEFAULT_STRATEGY = "margin"
DEFAULT_DIVERSITY = 0.3


class SelectionError(ValueError):
    """A strategy that cannot run with what was given (e.g. disagreement with one model)."""


def check_strategy(strategy: str, n_models: int) -> None:
    if strategy not in STRATEGIES:
        raise SelectionError(f"strategy: expected one of {list(STRATEGIES)}, found {strategy!r}")
    if strategy == "disagreement" and n_models < 2:
        raise SelectionError(
            f"strategy 'disagreement' needs a committee of two or more models, {n_models} given "
            "(MODEL=a,b[,c...]); with one model use margin or entropy"
        )


def _entropy(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-12, 1.0)
    return -(p * np.log(p)).sum(axis=-1)


def disagreement(members: list[np.ndarray]) -> np.ndarray:
    """Jensen-Shannon divergence of the members' distributions per row, over log(k): 0 when
    they agree, 1 at most. ``members``: one (rows, k) array per model."""
    if len(members) < 2:
        return np.zeros(len(members[0]))
    stack = np.stack(members)  # (models, rows, k)
    k = stack.shape[-1]
    return np.clip((_entropy(stack.mean(axis=0)) - _entropy(stack).mean(axis=0)) / np.log(k), 0.0, 1.0)


def pair_scores(members: list[np.ndarray], strategy: str, rng: np.random.Generator | None = None) -> np.ndarray:
    """One score per pair, in [0, 1]: how much annotating it would tell the model."""
    mean = np.mean(np.stack(members), axis=0)
    k = mean.shape[-1]
    if strategy == "margin":
        top = np.sort(mean, axis=-1)
        return 1.0 - (top[:, -1] - top[:, -2])
    if strategy == "entropy":
        return np.clip(_entropy(mean) / np.log(k), 0.0, 1.0)
    if strategy == "disagreement":
        return disagreement(members)
    if strategy == "random":
        return (rng or np.random.default_rng(0)).random(len(mean))
    raise SelectionError(f"strategy: expected one of {list(STRATEGIES)}, found {strategy!r}")


def diverse_top(scores: np.ndarray, texts: list[str], n: int, diversity: float = DEFAULT_DIVERSITY) -> list[int]:
    """Indices of ``n`` sentences by greedy maximal marginal relevance; ``diversity`` 0 is the
    plain top n by score."""
    scores = np.asarray(scores, dtype=float)
    n = min(n, len(scores))
    if n <= 0:
        return []
    if diversity <= 0 or n == 1:
        return [int(i) for i in np.argsort(-scores, kind="stable")[:n]]
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectors = TfidfVectorizer(sublinear_tf=True).fit_transform(texts)  # rows are L2-normalised
    picked: list[int] = []
    closest = np.zeros(len(scores))  # max cosine to a picked sentence
    available = np.ones(len(scores), dtype=bool)
    for _ in range(n):
        value = np.where(available, (1 - diversity) * scores - diversity * closest, -np.inf)
        i = int(np.argmax(value))
        picked.append(i)
        available[i] = False
        closest = np.maximum(closest, (vectors @ vectors[i].T).toarray().ravel())
    return picked
