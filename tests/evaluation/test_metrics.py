import json
import logging
from pathlib import Path

import keras
import numpy as np
import pytest

from mnist_pipeline.evaluation.metrics import (
    confusion_matrix,
    cross_entropy,
    macro_average,
    most_confident_mistakes,
    per_class_metrics,
    predictions_table,
    score_field_set,
    score_test_set,
)
from tests.support.recount import check_field_reports, check_reports
from tests.support.synthetic import probabilities_for


def test_confusion_matrix_counts_actual_by_predicted():
    confusion = confusion_matrix(np.array([0, 0, 1, 2, 2, 2]), np.array([0, 1, 1, 2, 2, 0]))
    assert confusion.shape == (10, 10)
    assert confusion.to_numpy()[:3, :3].tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 2]]
    assert confusion.to_numpy().sum() == 6
    assert confusion.index.name == "actual" and confusion.columns.name == "predicted"


def test_per_class_metrics_against_a_hand_computed_matrix(caplog):
    # Digit 0: 1 of 2 right, predicted twice (once wrongly, for a 2).
    # Digit 1: 1 of 1 right, predicted twice. Digit 2: 2 of 3 right, predicted twice.
    # Digit 3: present once, never predicted. Digits 4-9: absent.
    actual = np.array([0, 0, 1, 2, 2, 2, 3])
    predicted = np.array([0, 1, 1, 2, 2, 0, 1])
    with caplog.at_level(logging.WARNING):
        metrics = per_class_metrics(confusion_matrix(actual, predicted))
    assert list(metrics.columns) == ["precision", "recall", "f1", "support"]
    assert list(metrics.index) == list(range(10)) and metrics.index.name == "digit"
    assert metrics.loc[0].to_dict() == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}
    assert metrics.loc[1, "precision"] == 1 / 3 and metrics.loc[1, "recall"] == 1.0
    assert metrics.loc[1, "f1"] == 2 * (1 / 3) / (1 / 3 + 1)
    assert metrics.loc[2].to_dict() == {"precision": 1.0, "recall": 2 / 3, "f1": 0.8, "support": 3}
    # Never predicted: precision is 0, not NaN, and the log says so.
    assert metrics.loc[3].to_dict() == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert "precision of digit 3 is undefined (never predicted on the test set)" in caplog.text
    assert "recall of digit 4 is undefined (absent from the test set)" in caplog.text
    assert not metrics.isna().any().any()
    macro = macro_average(metrics)
    assert macro["recall"] == (0.5 + 1 + 2 / 3) / 10


def test_cross_entropy_matches_keras():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(50, 10))
    probabilities = (np.exp(logits) / np.exp(logits).sum(1, keepdims=True)).astype(np.float32)
    probabilities[0] = np.eye(10)[3]  # a certain, wrong answer: clipped, not infinite
    actual = rng.integers(0, 10, 50)
    actual[0] = 4
    expected = keras.losses.categorical_crossentropy(np.eye(10)[actual], probabilities)
    assert abs(cross_entropy(actual, probabilities) - float(np.mean(expected))) < 1e-5


def test_score_test_set_lists_the_headline_scores_only():
    actual = np.arange(20) % 10
    predicted = actual.copy()
    predicted[:4] = 9
    probabilities = probabilities_for(predicted)
    per_class = per_class_metrics(confusion_matrix(actual, predicted))
    metrics = score_test_set(actual, probabilities, per_class)["test"]
    assert metrics["accuracy"] == 0.8
    assert metrics["loss"] == cross_entropy(actual, probabilities)
    # digits 0-3: precision 1, recall 1/2; 4-8: all right; 9: precision 2/6, recall 1
    assert metrics["macro_f1"] == pytest.approx(
        (4 * 2 / 3 + 5 * 1 + 2 * (2 / 6) / (2 / 6 + 1)) / 10
    )
    assert sorted(metrics) == ["accuracy", "loss", "macro_f1"]  # per digit: per_class.csv only
    json.dumps(metrics, allow_nan=False)  # plain JSON types only, no NaN


def test_score_field_set_is_accuracy_and_count():
    actual = np.array([4, 4, 1, 7, 0])
    probabilities = probabilities_for(np.array([4, 9, 1, 7, 0]))
    assert score_field_set(actual, probabilities) == {"accuracy": 0.8, "count": 5}
    one = score_field_set(actual[:1], probabilities_for(np.array([3])))
    assert one == {"accuracy": 0.0, "count": 1}
    json.dumps(one, allow_nan=False)


def test_an_empty_field_set_reports_its_count_alone_and_zero_per_digit(caplog):
    nothing = np.zeros(0, np.int64)
    assert score_field_set(nothing, np.zeros((0, 10), np.float32)) == {"count": 0}
    with caplog.at_level(logging.INFO):
        per_class = per_class_metrics(confusion_matrix(nothing, nothing), "the field set")
    assert caplog.messages == ["the field set is empty: every per-digit score is reported as 0"]
    assert per_class.to_csv() == "digit,precision,recall,f1,support\n" + "".join(
        f"{digit},0.0,0.0,0.0,0\n" for digit in range(10)
    )


def test_predictions_table_is_actual_and_predicted_digits():
    actual = np.array([3, 1, 4])
    table = predictions_table(actual, probabilities_for(np.array([3, 7, 4])))
    assert table.to_csv(index=False) == "actual,predicted\n3,3\n1,7\n4,4\n"


def test_most_confident_mistakes_come_first_and_ties_keep_order():
    actual = np.array([1, 2, 3, 4, 5])
    probabilities = probabilities_for(np.array([0, 2, 0, 0, 0]), confidence=0.6)
    probabilities[3, 0], probabilities[3, 4] = 0.9, 0.01
    assert most_confident_mistakes(actual, probabilities, count=3).tolist() == [3, 0, 2]
    assert most_confident_mistakes(actual, probabilities_for(actual), count=3).tolist() == []


def test_the_committed_reports_say_what_the_committed_predictions_do():
    check_reports(Path(__file__).resolve().parents[2])
    check_field_reports(Path(__file__).resolve().parents[2])
