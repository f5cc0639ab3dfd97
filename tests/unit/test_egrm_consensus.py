"""Consensus, entropy, answer extraction and routing on hand-made answer lists."""

import math

import pytest

from components.grm_scorer.consensus import (
    consensus,
    extract_answer,
    majority_vote,
    normalize_answer,
    route,
)


def test_consensus_share_and_mode():
    result = consensus(["12", "12", "11", "12", "22"])
    assert result.answer == "12"
    assert result.share == pytest.approx(3 / 5)


def test_entropy_is_normalised_by_log_m():
    assert consensus(["7"] * 5).entropy == pytest.approx(0.0)
    assert consensus(["1", "2", "3", "4", "5"]).entropy == pytest.approx(1.0)
    # counts (3, 1, 1) of M = 5: -(0.6 ln 0.6 + 2 * 0.2 ln 0.2) / ln 5
    expected = -(0.6 * math.log(0.6) + 2 * 0.2 * math.log(0.2)) / math.log(5)
    assert consensus(["a", "b", "a", "c", "a"]).entropy == pytest.approx(expected)


def test_ties_go_to_the_first_seen_answer():
    assert consensus(["9", "8", "8", "9"]).answer == "9"
    assert majority_vote(["", "", "5", "6"]) == "5"  # empty answers never win a vote
    assert majority_vote(["", ""]) == ""


def test_empty_answers_are_never_agreement():
    assert consensus(["", "", "", "", ""]).share == 0.0
    result = consensus(["", "", "", "7", "7"])
    assert result.answer == "7" and result.share == pytest.approx(2 / 5)
    assert route(consensus([""] * 5).share, 0.8) == "cot"


@pytest.mark.parametrize(
    ("share", "tau", "expected"),
    [
        (0.8, 0.8, "direct"),
        (4 / 5, 0.8, "direct"),
        (0.6, 0.8, "cot"),
        (1.0, 1.0, "direct"),
        (0.8, 1.0, "cot"),
        (0.2, 0.2, "direct"),
    ],
)
def test_routing_at_exactly_tau_goes_direct(share, tau, expected):
    assert route(share, tau) == expected


def test_consensus_exactly_tau_from_samples():
    share = consensus(["3", "3", "3", "3", "4"]).share  # 4/5 computed, not typed
    assert route(share, 0.8) == "direct"
    assert route(consensus(["3", "3", "3", "4", "4"]).share, 0.8) == "cot"


def test_normalisation_and_extraction():
    assert normalize_answer("  Paris. ") == "paris"
    assert normalize_answer('B";') == "b"  # trailing punctuation only, as in the reference code
    assert extract_answer("3+4=7;7+5=12;A:12") == "12"
    assert extract_answer("A:12") == "12"
    assert extract_answer("3+4=7;V:B") == "b"
    assert extract_answer("3+4=7;7+5=") == ""
    assert extract_answer("The answer is 1,234.", "last_number") == "1234"
    assert extract_answer("no digits here", "last_number") == ""
    assert extract_answer("7 + 7 = 14, which is the sum of 7", "first_number") == "14"
    assert extract_answer("14.\nBecause 7 + 7", "first_number") == "14"
