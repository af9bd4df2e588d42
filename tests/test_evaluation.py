import logging

import keras
import numpy as np

from mnist_pipeline.evaluation import (
    confusion_matrix,
    cross_entropy,
    draw_mistakes,
    macro_average,
    most_confident_mistakes,
    per_class_metrics,
    score_test_set,
)


def probabilities_for(predicted, confidence=0.9):
    probabilities = np.full((len(predicted), 10), (1 - confidence) / 9, dtype=np.float32)
    probabilities[np.arange(len(predicted)), predicted] = confidence
    return probabilities


def test_confusion_matrix_counts_actual_by_predicted():
    confusion = confusion_matrix(np.array([0, 0, 1, 2, 2, 2]), np.array([0, 1, 1, 2, 2, 0]))
    assert confusion.shape == (10, 10)
    assert confusion[:3, :3].tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 2]]
    assert confusion.sum() == 6


def test_per_class_metrics_against_a_hand_computed_matrix(caplog):
    # Digit 0: 1 of 2 right, predicted twice (once wrongly, for a 2).
    # Digit 1: 1 of 1 right, predicted twice. Digit 2: 2 of 3 right, predicted twice.
    # Digit 3: present once, never predicted. Digits 4-9: absent.
    actual = np.array([0, 0, 1, 2, 2, 2, 3])
    predicted = np.array([0, 1, 1, 2, 2, 0, 1])
    with caplog.at_level(logging.WARNING):
        metrics = per_class_metrics(confusion_matrix(actual, predicted))
    assert metrics["0"] == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}
    assert metrics["1"]["precision"] == 1 / 3 and metrics["1"]["recall"] == 1.0
    assert metrics["1"]["f1"] == 2 * (1 / 3) / (1 / 3 + 1)
    assert metrics["2"] == {"precision": 1.0, "recall": 2 / 3, "f1": 0.8, "support": 3}
    # Never predicted: precision is 0, not NaN, and the log says so.
    assert metrics["3"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert "precision of digit 3 (never predicted)" in caplog.text
    assert all(not np.isnan(value) for scores in metrics.values() for value in scores.values())
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


def test_score_test_set_lists_accuracy_loss_and_every_digit():
    actual = np.arange(20) % 10
    predicted = actual.copy()
    predicted[:4] = 9
    metrics = score_test_set(actual, probabilities_for(predicted))["test"]
    assert metrics["accuracy"] == 0.8
    assert sorted(metrics["per_class"]) == [str(d) for d in range(10)]
    assert metrics["per_class"]["9"]["precision"] == 2 / 6
    assert set(metrics["macro_avg"]) == {"precision", "recall", "f1"}


def test_most_confident_mistakes_come_first_and_ties_keep_order():
    actual = np.array([1, 2, 3, 4, 5])
    probabilities = probabilities_for(np.array([0, 2, 0, 0, 0]), confidence=0.6)
    probabilities[3, 0], probabilities[3, 4] = 0.9, 0.01
    assert most_confident_mistakes(actual, probabilities, count=3).tolist() == [3, 0, 2]
    assert most_confident_mistakes(actual, probabilities_for(actual), count=3).tolist() == []


def test_draw_mistakes_makes_a_grid_of_captioned_digits(tiny_mnist):
    images, actual = tiny_mnist["x_test"], tiny_mnist["y_test"].astype(np.int64)
    probabilities = probabilities_for((actual + 1) % 10)
    sheet = draw_mistakes(images, actual, probabilities, np.arange(5), zoom=2)
    assert sheet.mode == "L"
    assert sheet.size == (3 * (56 + 4), 2 * (56 + 20 + 4))
    assert sheet.getpixel((0, 0)) == images[0, 0, 0]
    empty = draw_mistakes(images, actual, probabilities, np.arange(0))
    assert empty.size[0] > 0
