"""Evaluation metrics: SemEval-2016 F_avg, macro F1, bootstrap CIs, calibration and figures.

Pure functions on label-string sequences and numpy arrays; no experiment tracking here.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import numpy as np
from matplotlib.figure import Figure
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.metrics import (
    accuracy_score,
    classification_report,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
)

Labels = Sequence[str]
Metric = Callable[[np.ndarray, np.ndarray], float]

_PROB_SUM_ATOL = 1e-3


@contextmanager
def _zero_division_covered() -> Iterator[None]:
    # Only wrapped around calls that pass zero_division=0, so the warning carries no information.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        yield


def _check_pair(y_true: Sequence, y_pred: Sequence) -> tuple[np.ndarray, np.ndarray]:
    yt, yp = np.asarray(y_true), np.asarray(y_pred)
    if yt.ndim != 1 or yp.ndim != 1:
        raise ValueError(f"y_true and y_pred must be 1-D, got shapes {yt.shape} and {yp.shape}")
    if len(yt) != len(yp):
        raise ValueError(f"length mismatch: y_true has {len(yt)} examples, y_pred has {len(yp)}")
    if len(yt) == 0:
        raise ValueError("cannot compute metrics on empty input (0 examples)")
    return yt, yp


def _check_probs(probs: np.ndarray, y_true_idx: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(probs, dtype=float)
    y = np.asarray(y_true_idx)
    if p.ndim != 2:
        raise ValueError(f"probs must be a 2-D (n, k) array, got shape {p.shape}")
    if y.ndim != 1:
        raise ValueError(f"y_true_idx must be 1-D, got shape {y.shape}")
    if p.shape[0] != len(y):
        raise ValueError(f"length mismatch: probs has {p.shape[0]} rows, y_true_idx has {len(y)} entries")
    if len(y) == 0:
        raise ValueError("cannot compute calibration on empty input (0 examples)")
    if not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"y_true_idx must hold integer class indices, got dtype {y.dtype}")
    if y.min() < 0 or y.max() >= p.shape[1]:
        raise ValueError(f"y_true_idx values must lie in [0, {p.shape[1]}), got range [{y.min()}, {y.max()}]")
    if not np.all(np.isfinite(p)) or p.min() < 0 or p.max() > 1 + _PROB_SUM_ATOL:
        raise ValueError("probs must be finite and within [0, 1]")
    sums = p.sum(axis=1)
    bad = np.flatnonzero(np.abs(sums - 1.0) > _PROB_SUM_ATOL)
    if bad.size:
        raise ValueError(
            f"probs rows must sum to 1 (atol {_PROB_SUM_ATOL}); {bad.size} row(s) do not, "
            f"e.g. row {bad[0]} sums to {sums[bad[0]]:.6f}"
        )
    return p, y


def f_avg(y_true: Sequence[str], y_pred: Sequence[str], stance_labels: Labels) -> float:
    """SemEval-2016 F_avg: mean per-class F1 over `stance_labels` (e.g. favor, against), on the whole set."""
    yt, yp = _check_pair(y_true, y_pred)
    with _zero_division_covered():
        return float(f1_score(yt, yp, labels=list(stance_labels), average="macro", zero_division=0))


def macro_f1(y_true: Sequence[str], y_pred: Sequence[str], labels: Labels) -> float:
    """Macro-averaged F1 over all `labels`; a label absent from gold and predictions scores 0."""
    yt, yp = _check_pair(y_true, y_pred)
    with _zero_division_covered():
        return float(f1_score(yt, yp, labels=list(labels), average="macro", zero_division=0))


def bootstrap_ci(
    y_true: Sequence,
    y_pred: Sequence,
    metric: Metric,
    n_resamples: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap (1 - alpha) CI of `metric(y_true, y_pred)`, resampling examples with replacement."""
    # Hand-written: sklearn has no bootstrap, and scipy.stats.bootstrap is not a dependency here.
    yt, yp = _check_pair(y_true, y_pred)
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(yt), size=(n_resamples, len(yt)))
    stats = np.array([metric(yt[i], yp[i]) for i in idx], dtype=float)
    low, high = np.quantile(stats, [alpha / 2, 1 - alpha / 2])
    return float(low), float(high)


def _calibration_bins(
    probs: np.ndarray, y_true_idx: Sequence[int], n_bins: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per equal-width bin: edges (n_bins+1), counts, mean confidence, accuracy (NaN for empty bins)."""
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    p, y = _check_probs(probs, y_true_idx)
    conf = p.max(axis=1)
    correct = (p.argmax(axis=1) == y).astype(float)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    # Bins are (lo, hi]; confidence 0 goes to the first bin, anything >= 1 to the last.
    which = np.clip(np.searchsorted(edges[1:-1], conf, side="left"), 0, n_bins - 1)
    counts = np.bincount(which, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.bincount(which, weights=conf, minlength=n_bins) / counts
        acc = np.bincount(which, weights=correct, minlength=n_bins) / counts
    return edges, counts, mean_conf, acc


def expected_calibration_error(probs: np.ndarray, y_true_idx: Sequence[int], n_bins: int = 10) -> float:
    """Top-label ECE: sum over equal-width bins of (bin size / n) * |accuracy - mean confidence|."""
    # Hand-written: sklearn only has calibration_curve for binary problems, not multiclass top-label ECE.
    _, counts, mean_conf, acc = _calibration_bins(probs, y_true_idx, n_bins)
    nonempty = counts > 0
    weights = counts[nonempty] / counts.sum()
    return float(np.sum(weights * np.abs(acc[nonempty] - mean_conf[nonempty])))


def reliability_diagram(probs: np.ndarray, y_true_idx: Sequence[int], n_bins: int = 10, title: str = "") -> Figure:
    """Accuracy vs confidence per bin with the diagonal, and bin counts underneath; ECE in the title."""
    edges, counts, mean_conf, acc = _calibration_bins(probs, y_true_idx, n_bins)
    ece = expected_calibration_error(probs, y_true_idx, n_bins)
    centers = (edges[:-1] + edges[1:]) / 2
    width = 1.0 / n_bins
    nonempty = counts > 0

    fig = Figure(figsize=(5, 6), layout="constrained")
    ax, ax_counts = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    ax.bar(centers[nonempty], acc[nonempty], width=width, edgecolor="black", alpha=0.8, label="accuracy")
    ax.plot(mean_conf[nonempty], acc[nonempty], "o", color="tab:red", markersize=4, label="mean confidence")
    ax.plot([0, 1], [0, 1], "--", color="gray", label="perfect calibration")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_ylabel("accuracy")
    ax.legend(loc="upper left", fontsize="small")
    ax.set_title(f"{title} (ECE = {ece:.3f})" if title else f"ECE = {ece:.3f}")

    ax_counts.bar(centers, counts, width=width, edgecolor="black", color="tab:gray")
    ax_counts.set_xlabel("confidence (max probability)")
    ax_counts.set_ylabel("count")
    return fig


def confusion_matrix_figure(y_true: Sequence[str], y_pred: Sequence[str], labels: Labels, title: str = "") -> Figure:
    """Confusion-matrix heatmap with counts in cells: gold labels on rows, predicted on columns."""
    yt, yp = _check_pair(y_true, y_pred)
    labels = list(labels)
    cm = confusion_matrix(yt, yp, labels=labels)

    size = 1.2 + 0.9 * len(labels)
    fig = Figure(figsize=(size + 1, size), layout="constrained")
    ax = fig.subplots()
    im = ax.imshow(cm, cmap="Blues", vmin=0)
    fig.colorbar(im, ax=ax)
    ticks = np.arange(len(labels))
    ax.set_xticks(ticks, labels, rotation=45, ha="right")
    ax.set_yticks(ticks, labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold")
    threshold = cm.max() / 2 if cm.max() else 1
    for i, j in np.ndindex(cm.shape):
        ax.text(j, i, str(cm[i, j]), ha="center", va="center", color="white" if cm[i, j] > threshold else "black")
    if title:
        ax.set_title(title)
    return fig


def _check_inputs(y_true, y_pred, probs, labels: list[str], stance_labels: list[str], groups):
    """Arrays of the inputs, every problem an error before any work (a bad grouping before the bootstrap)."""
    yt, yp = _check_pair(y_true, y_pred)
    if missing := [lab for lab in stance_labels if lab not in labels]:
        raise ValueError(f"stance_labels {missing} are not in labels {labels}")
    for name, arr in (("y_true", yt), ("y_pred", yp)):
        if unknown := sorted(set(arr.tolist()) - set(labels)):
            raise ValueError(f"{name} contains labels not in {labels}: {unknown}")
    p = np.asarray(probs, dtype=float)
    if p.ndim != 2 or p.shape != (len(yt), len(labels)):
        raise ValueError(f"probs must have shape (n, k) = ({len(yt)}, {len(labels)}), got {p.shape}")
    group_arrays = {name: np.asarray(values, dtype=str) for name, values in (groups or {}).items()}
    for gname, g in group_arrays.items():
        if g.shape != yt.shape:
            raise ValueError(f"length mismatch: group {gname!r} has {len(g)} entries, y_true has {len(yt)}")
    return yt, yp, p, group_arrays


def evaluate_predictions(
    y_true: Sequence[str],
    y_pred: Sequence[str],
    probs: np.ndarray,
    labels: Labels,
    stance_labels: Labels,
    groups: dict[str, Sequence[str]] | None = None,
    min_support: int = 5,
    n_resamples: int = 1000,
    seed: int = 0,
) -> dict[str, float]:
    """Flat metric dict with namespaced keys and no split prefix (the caller adds e.g. "test/").

    Keys: f_avg, macro_f1, accuracy, n, ece, {f_avg,macro_f1}_ci_{low,high},
    {precision,recall,f1,support}/<label>, and for each grouping G and value V with at least
    `min_support` examples: f_avg/G/V, macro_f1/G/V, n/G/V. `probs` columns follow `labels`.
    """
    labels, stance_labels = list(labels), list(stance_labels)
    yt, yp, p, group_arrays = _check_inputs(y_true, y_pred, probs, labels, stance_labels, groups)
    index = {lab: i for i, lab in enumerate(labels)}
    y_true_idx = np.array([index[lab] for lab in yt.tolist()], dtype=int)

    def fa(a: np.ndarray, b: np.ndarray) -> float:
        return f_avg(a, b, stance_labels)

    def mf(a: np.ndarray, b: np.ndarray) -> float:
        return macro_f1(a, b, labels)

    out: dict[str, float] = {
        "f_avg": fa(yt, yp),
        "macro_f1": mf(yt, yp),
        "accuracy": float(accuracy_score(yt, yp)),
        "n": len(yt),
        "ece": expected_calibration_error(p, y_true_idx),
    }
    if n_resamples > 0:  # 0 skips the confidence intervals (cross-validation folds, say)
        out["f_avg_ci_low"], out["f_avg_ci_high"] = bootstrap_ci(yt, yp, fa, n_resamples=n_resamples, seed=seed)
        out["macro_f1_ci_low"], out["macro_f1_ci_high"] = bootstrap_ci(yt, yp, mf, n_resamples=n_resamples, seed=seed)

    with _zero_division_covered():
        prec, rec, f1, support = precision_recall_fscore_support(yt, yp, labels=labels, zero_division=0)
    for i, lab in enumerate(labels):
        out[f"precision/{lab}"] = float(prec[i])
        out[f"recall/{lab}"] = float(rec[i])
        out[f"f1/{lab}"] = float(f1[i])
        out[f"support/{lab}"] = int(support[i])

    for gname, g in group_arrays.items():
        vals, counts = np.unique(g, return_counts=True)
        for v, c in zip(vals.tolist(), counts.tolist()):
            if c < min_support:
                continue
            mask = g == v
            out[f"f_avg/{gname}/{v}"] = fa(yt[mask], yp[mask])
            out[f"macro_f1/{gname}/{v}"] = mf(yt[mask], yp[mask])
            out[f"n/{gname}/{v}"] = c
    return out


def classification_report_text(y_true: Sequence[str], y_pred: Sequence[str], labels: Labels, digits: int = 3) -> str:
    """sklearn's text classification report over `labels` (zero_division=0)."""
    yt, yp = _check_pair(y_true, y_pred)
    with _zero_division_covered():
        return classification_report(yt, yp, labels=list(labels), zero_division=0, digits=digits)
