"""Exact match and `hasanswer` by hand (SQuAD normalisation)."""

from __future__ import annotations

from components.atm.metrics import exact_match, has_answer, normalize_answer


def test_squad_normalisation_and_exact_match():
    assert normalize_answer("  The  Violin! ") == "violin"
    assert exact_match("an optician.", ["Optician"])
    assert not exact_match("optician, baker", ["optician"])
    assert has_answer("Fans cheered as Kobami picked up the violin.", ["the Violin"])
    assert not has_answer("She plays violins.", ["violin"])  # whole words only
