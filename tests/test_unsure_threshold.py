"""tools/unsure_threshold.py: the counts behind classifiers.UNSURE_BELOW."""

import numpy as np
import pytest

from tools.unsure_threshold import flagged, table


def rows(*pairs: tuple[int, float]) -> np.ndarray:
    """Probabilities with the given (digit, probability) on top, the rest spread on digit 9."""
    probabilities = np.zeros((len(pairs), 10), np.float32)
    for row, (digit, probability) in enumerate(pairs):
        probabilities[row, 9] = 1 - probability
        probabilities[row, digit] = probability
    return probabilities


PROBABILITIES = rows((1, 0.95), (2, 0.6), (3, 0.85), (4, 0.55), (5, 0.9))
ACTUAL = np.array([1, 2, 8, 8, 5])  # right, right, misread, misread, right


@pytest.mark.parametrize(
    ("threshold", "counts"),
    [
        (0.5, (0, 0)),  # nothing is below: nothing flagged
        (0.55, (0, 0)),  # below, not at: 0.55 itself is sure enough
        (0.6, (1, 0)),
        (0.9, (2, 1)),  # the 0.9 right reading is not below 0.9
        (0.96, (2, 3)),  # everything
    ],
)
def test_flagged_counts_misreads_and_right_readings_below_the_threshold(threshold, counts):
    assert flagged(PROBABILITIES, ACTUAL, threshold) == counts


def test_the_table_gives_each_count_and_its_share():
    lines = table(PROBABILITIES, ACTUAL, (0.6, 0.96)).splitlines()
    assert lines[0] == "5 digits, 2 misread"
    assert lines[2].split() == ["0.60", "1", "(50.0%)", "0", "(0.0%)"]
    assert lines[3].split() == ["0.96", "2", "(100.0%)", "3", "(100.0%)"]
