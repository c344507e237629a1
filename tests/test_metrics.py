import warnings

import numpy as np
import pytest
from matplotlib.figure import Figure
from sklearn.metrics import f1_score

from pipeline.metrics import (
    bootstrap_ci,
    classification_report_text,
    confusion_matrix_figure,
    evaluate_predictions,
    expected_calibration_error,
    f_avg,
    macro_f1,
    reliability_diagram,
)

LABELS = ["favor", "against", "none"]
STANCE = ["favor", "against"]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# Hand-worked example used by several tests.
Y_TRUE = ["favor", "favor", "favor", "against", "against", "none", "none", "none"]
Y_PRED = ["favor", "favor", "against", "against", "none", "none", "favor", "none"]
# favor:   TP=2 (0,1), FP=1 (6), FN=1 (2) -> P=2/3, R=2/3, F1=2/3
# against: TP=1 (3),   FP=1 (2), FN=1 (4) -> P=1/2, R=1/2, F1=1/2
# none:    TP=2 (5,7), FP=1 (4), FN=1 (6) -> F1=2/3
# F_avg    = (2/3 + 1/2) / 2       = 7/12
# macro F1 = (2/3 + 1/2 + 2/3) / 3 = 11/18


def _noisy_predictions(n: int = 300, accuracy: float = 0.7, seed: int = 1) -> tuple[list[str], list[str]]:
    rng = np.random.default_rng(seed)
    y_true = rng.choice(LABELS, size=n, p=[0.4, 0.35, 0.25])
    wrong = rng.random(n) > accuracy
    y_pred = np.where(wrong, rng.choice(LABELS, size=n), y_true)
    return y_true.tolist(), y_pred.tolist()


def _one_hot_probs(y_pred: list[str], confidence: float = 0.8) -> np.ndarray:
    k = len(LABELS)
    probs = np.full((len(y_pred), k), (1 - confidence) / (k - 1))
    probs[np.arange(len(y_pred)), [LABELS.index(y) for y in y_pred]] = confidence
    return probs


# --- F_avg / macro F1 -------------------------------------------------------


def test_f_avg_hand_computed():
    assert f_avg(Y_TRUE, Y_PRED, STANCE) == pytest.approx(7 / 12)


def test_f_avg_equals_sklearn_macro_over_stance_labels_and_ignores_none():
    expected = f1_score(Y_TRUE, Y_PRED, labels=STANCE, average="macro")
    assert f_avg(Y_TRUE, Y_PRED, STANCE) == pytest.approx(expected)
    assert f_avg(Y_TRUE, Y_PRED, STANCE) != pytest.approx(macro_f1(Y_TRUE, Y_PRED, LABELS))


def test_macro_f1_hand_computed():
    assert macro_f1(Y_TRUE, Y_PRED, LABELS) == pytest.approx(11 / 18)


def test_perfect_prediction_scores_one_with_degenerate_ci():
    y = ["favor", "against", "none", "favor", "against"] * 4
    assert f_avg(y, y, STANCE) == 1.0
    assert macro_f1(y, y, LABELS) == 1.0
    assert bootstrap_ci(y, y, lambda a, b: f_avg(a, b, STANCE), n_resamples=200) == (1.0, 1.0)


def test_label_absent_from_gold_and_predictions_scores_zero_without_warnings():
    y_true = ["favor", "against", "favor", "against"]
    y_pred = ["favor", "against", "against", "against"]
    # favor: P=1, R=1/2 -> F1=2/3; against: P=2/3, R=1 -> F1=4/5; none absent -> 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        score = macro_f1(y_true, y_pred, LABELS)
        report = classification_report_text(y_true, y_pred, LABELS)
        metrics = evaluate_predictions(y_true, y_pred, _one_hot_probs(y_pred), LABELS, STANCE, n_resamples=20)
    assert score == pytest.approx((2 / 3 + 4 / 5 + 0) / 3)
    assert metrics["f1/none"] == 0.0
    assert metrics["support/none"] == 0
    assert "none" in report


# --- bootstrap --------------------------------------------------------------


def test_bootstrap_is_deterministic_per_seed_and_contains_point_estimate():
    y_true, y_pred = _noisy_predictions()
    metric = lambda a, b: f_avg(a, b, STANCE)  # noqa: E731
    first = bootstrap_ci(y_true, y_pred, metric, n_resamples=300, seed=7)
    again = bootstrap_ci(y_true, y_pred, metric, n_resamples=300, seed=7)
    other = bootstrap_ci(y_true, y_pred, metric, n_resamples=300, seed=8)
    assert first == again
    assert first != other
    low, high = first
    assert low < metric(y_true, y_pred) < high
    assert 0.0 < high - low < 0.3


def test_bootstrap_narrower_with_larger_alpha():
    y_true, y_pred = _noisy_predictions()
    wide = bootstrap_ci(y_true, y_pred, lambda a, b: macro_f1(a, b, LABELS), n_resamples=300, alpha=0.05)
    narrow = bootstrap_ci(y_true, y_pred, lambda a, b: macro_f1(a, b, LABELS), n_resamples=300, alpha=0.5)
    assert wide[0] <= narrow[0] <= narrow[1] <= wide[1]


# --- calibration ------------------------------------------------------------


def test_ece_zero_when_confident_and_always_right():
    probs = np.eye(3)[[0, 1, 2, 0, 1]]
    assert expected_calibration_error(probs, np.array([0, 1, 2, 0, 1])) == 0.0


def test_ece_zero_when_confidence_matches_accuracy():
    # Every example has confidence 0.75 and 3 of 4 are right.
    probs = np.array([[0.75, 0.25]] * 4)
    assert expected_calibration_error(probs, np.array([0, 0, 0, 1])) == pytest.approx(0.0)


def test_ece_one_when_confident_and_always_wrong():
    probs = np.eye(2)[[0, 0, 1]]
    assert expected_calibration_error(probs, np.array([1, 1, 0])) == pytest.approx(1.0)


def test_ece_two_bin_hand_computed():
    probs = np.array(
        [
            [0.9, 0.05, 0.05],  # conf 0.9, correct
            [0.9, 0.05, 0.05],  # conf 0.9, wrong
            [0.1, 0.8, 0.1],  # conf 0.8, correct
            [0.2, 0.2, 0.6],  # conf 0.6, correct
            [0.4, 0.3, 0.3],  # conf 0.4, correct
            [0.3, 0.4, 0.3],  # conf 0.4, correct
        ]
    )
    y = np.array([0, 1, 1, 2, 0, 1])
    # bin (0.5, 1]: 4 examples, mean conf (0.9+0.9+0.8+0.6)/4 = 0.8, accuracy 3/4 -> gap 0.05
    # bin [0, 0.5]: 2 examples, mean conf 0.4, accuracy 1 -> gap 0.6
    # ECE = 4/6 * 0.05 + 2/6 * 0.6 = 0.0333... + 0.2 = 0.2333...
    assert expected_calibration_error(probs, y, n_bins=2) == pytest.approx(4 / 6 * 0.05 + 2 / 6 * 0.6)


def test_ece_rejects_probs_not_summing_to_one():
    with pytest.raises(ValueError, match="sum to 1"):
        expected_calibration_error(np.array([[0.5, 0.4], [0.5, 0.5]]), np.array([0, 1]))


def test_ece_rejects_out_of_range_index_and_length_mismatch():
    with pytest.raises(ValueError, match=r"\[0, 2\)"):
        expected_calibration_error(np.array([[0.5, 0.5]]), np.array([2]))
    with pytest.raises(ValueError, match="2 rows.*1 entries"):
        expected_calibration_error(np.array([[0.5, 0.5], [1.0, 0.0]]), np.array([0]))


# --- input validation -------------------------------------------------------


@pytest.mark.parametrize(
    "fn",
    [
        lambda a, b: f_avg(a, b, STANCE),
        lambda a, b: macro_f1(a, b, LABELS),
        lambda a, b: bootstrap_ci(a, b, lambda x, y: 0.0),
        lambda a, b: classification_report_text(a, b, LABELS),
        lambda a, b: confusion_matrix_figure(a, b, LABELS),
        lambda a, b: evaluate_predictions(a, b, np.zeros((0, 3)), LABELS, STANCE),
    ],
)
def test_empty_and_mismatched_inputs_raise(fn):
    with pytest.raises(ValueError, match="empty"):
        fn([], [])
    with pytest.raises(ValueError, match="y_true has 3.*y_pred has 2"):
        fn(["favor"] * 3, ["favor"] * 2)


def test_ece_empty_raises():
    with pytest.raises(ValueError, match="empty"):
        expected_calibration_error(np.zeros((0, 3)), np.array([], dtype=int))


def test_evaluate_rejects_bad_probs_and_unknown_labels():
    y = ["favor", "against"]
    with pytest.raises(ValueError, match="sum to 1"):
        evaluate_predictions(y, y, np.array([[0.9, 0.9, 0.0], [0.0, 1.0, 0.0]]), LABELS, STANCE)
    with pytest.raises(ValueError, match=r"shape \(n, k\) = \(2, 3\)"):
        evaluate_predictions(y, y, np.eye(2), LABELS, STANCE)
    with pytest.raises(ValueError, match="y_pred contains labels not in"):
        evaluate_predictions(y, ["favor", "neutral"], np.eye(3)[[0, 1]], LABELS, STANCE)
    with pytest.raises(ValueError, match="group 'target' has 1 entries"):
        evaluate_predictions(y, y, np.eye(3)[[0, 1]], LABELS, STANCE, groups={"target": ["t1"]})


# --- evaluate_predictions ---------------------------------------------------


def test_evaluate_predictions_keys_and_values():
    probs = _one_hot_probs(Y_PRED)
    m = evaluate_predictions(Y_TRUE, Y_PRED, probs, LABELS, STANCE, n_resamples=100, seed=3)
    expected_keys = {
        "f_avg", "macro_f1", "accuracy", "n", "ece",
        "f_avg_ci_low", "f_avg_ci_high", "macro_f1_ci_low", "macro_f1_ci_high",
    } | {f"{kind}/{lab}" for kind in ("precision", "recall", "f1", "support") for lab in LABELS}  # fmt: skip
    assert set(m) == expected_keys
    assert m["f_avg"] == pytest.approx(7 / 12)
    assert m["macro_f1"] == pytest.approx(11 / 18)
    assert m["accuracy"] == pytest.approx(5 / 8)
    assert m["n"] == 8
    # All confidences are 0.8 and accuracy is 5/8, so one bin with gap 0.175.
    assert m["ece"] == pytest.approx(0.8 - 5 / 8)
    assert m["precision/against"] == pytest.approx(1 / 2)
    assert m["f1/favor"] == pytest.approx(2 / 3)
    assert m["support/none"] == 3
    assert (m["f_avg_ci_low"], m["f_avg_ci_high"]) == bootstrap_ci(
        Y_TRUE, Y_PRED, lambda a, b: f_avg(a, b, STANCE), n_resamples=100, seed=3
    )
    assert m["macro_f1_ci_low"] <= m["macro_f1"] <= m["macro_f1_ci_high"]


def test_group_metrics_skip_small_groups_and_compute_per_group_f_avg():
    y_true = ["favor", "favor", "against", "against", "none", "favor", "against", "favor", "none"]
    y_pred = ["favor", "against", "against", "against", "none", "favor", "favor", "none", "none"]
    target = ["t1"] * 5 + ["t2"] * 4
    actor = ["a"] * 7 + ["b"] * 2
    m = evaluate_predictions(
        y_true, y_pred, _one_hot_probs(y_pred), LABELS, STANCE,
        groups={"target": target, "actor": actor}, min_support=4, n_resamples=20,
    )  # fmt: skip
    # t1 = first 5: favor TP=1 FN=1 -> F1=2/3; against TP=2 FP=1 -> P=2/3 R=1 F1=4/5
    assert m["f_avg/target/t1"] == pytest.approx((2 / 3 + 4 / 5) / 2)
    # t2 = last 4: favor P=1/2 R=1/2 -> F1=1/2; against TP=0 -> F1=0
    assert m["f_avg/target/t2"] == pytest.approx(1 / 4)
    assert m["n/target/t1"] == 5 and m["n/target/t2"] == 4
    assert m["macro_f1/target/t1"] == pytest.approx(macro_f1(y_true[:5], y_pred[:5], LABELS))
    assert m["n/actor/a"] == 7
    # Actor b has 2 < min_support examples: skipped entirely, not reported as 0.
    assert not [k for k in m if k.endswith("/actor/b")]


def test_no_group_keys_without_groups():
    m = evaluate_predictions(Y_TRUE, Y_PRED, _one_hot_probs(Y_PRED), LABELS, STANCE, n_resamples=20)
    assert not [k for k in m if k.count("/") >= 2]


# --- figures / report -------------------------------------------------------


def _assert_png(fig: Figure, path) -> None:
    assert isinstance(fig, Figure)
    fig.savefig(path)
    assert path.read_bytes()[:8] == PNG_SIGNATURE


def test_reliability_diagram_is_png_figure_with_ece_in_title(tmp_path):
    rng = np.random.default_rng(0)
    probs = rng.dirichlet([2, 1, 1], size=200)
    y = rng.integers(0, 3, size=200)
    fig = reliability_diagram(probs, y, n_bins=10, title="dev")
    _assert_png(fig, tmp_path / "reliability.png")
    title = fig.axes[0].get_title()
    assert "dev" in title
    assert f"ECE = {expected_calibration_error(probs, y):.3f}" in title


def test_confusion_matrix_figure_annotates_counts(tmp_path):
    fig = confusion_matrix_figure(Y_TRUE, Y_PRED, LABELS, title="test")
    _assert_png(fig, tmp_path / "cm.png")
    ax = fig.axes[0]
    assert ax.get_ylabel() == "gold" and ax.get_xlabel() == "predicted"
    assert [t.get_text() for t in ax.get_xticklabels()] == LABELS
    # Row-major cell texts equal the confusion matrix (gold rows, predicted columns).
    assert [t.get_text() for t in ax.texts] == ["2", "1", "0", "0", "1", "1", "1", "0", "2"]


def test_classification_report_text_lists_labels():
    report = classification_report_text(Y_TRUE, Y_PRED, LABELS)
    assert all(lab in report for lab in LABELS)
    assert "0.667" in report  # favor F1 at 3 digits
