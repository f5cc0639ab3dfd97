"""The real-teacher world's pieces by hand: the student's lexical features, the teachers' label-free
scale, and the answer-selection questions (negatives: the same topic's sentences sharing the most
words with the description)."""

import math

import numpy as np
import pytest

from components.govern import text_pairs


def test_lexical_features_by_hand():
    features = text_pairs.lexical_features("A film by Kubrick", "Kubrick made a film.", dim=8)
    # shared {a, film, kubrick}: 3 words in the buckets; union {a, film, by, kubrick, made} = 5
    assert sum(features[:8]) == 3
    assert features[8:] == pytest.approx([3.0, 3 / 5, math.log1p(4 / 4)])


def test_standardize_uses_the_pool_alone():
    pool = np.array([1.0, 3.0])  # mean 2, std 1
    assert text_pairs.standardize(np.array([1.0, 3.0, 5.0]), pool).tolist() == [-1.0, 1.0, 3.0]


def test_first_sentence():
    assert text_pairs.first_sentence("Paris is a city. It is old.") == "Paris is a city."
    assert text_pairs.first_sentence("No full stop") == "No full stop"


def test_negatives_are_the_topics_closest_by_words():
    def article(title: str, description: str, extract: str, topic: str = "t") -> dict:
        return {"title": title, "description": description, "extract": extract, "topic": topic}

    summaries = {
        "A": article("A", "red fast car", "A is a red fast car."),
        "B": article("B", "blue boat", "B is a red fast boat."),
        "C": article("C", "green tree", "C is a green tree."),
        "D": article("D", "red car", "D is a red car.", topic="u"),
    }
    pairs = text_pairs.answer_selection(summaries, questions=4, candidates=2, seed=0)
    about_a = [p for p in pairs if p["query"] == "red fast car"]
    # B shares "red fast" with A's description, C nothing, D is another topic
    assert sorted(p["candidate"] for p in about_a) == [
        "A is a red fast car.",
        "B is a red fast boat.",
    ]
    assert [p["label"] for p in about_a if p["candidate"].startswith("A")] == [1]
