"""Exact match as open-domain QA scores it (SQuAD normalisation), and whether a passage contains
an answer (the `hasanswer` flag of a retrieved document)."""

from __future__ import annotations

import re
import string
from collections.abc import Sequence

ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_answer(text: str) -> str:
    """Lower case, punctuation and the articles a/an/the removed, whitespace collapsed."""
    text = "".join(c for c in text.lower() if c not in string.punctuation)
    return " ".join(ARTICLES.sub(" ", text).split())


def exact_match(prediction: str, answers: Sequence[str]) -> bool:
    return normalize_answer(prediction) in {normalize_answer(a) for a in answers}


def has_answer(passage: str, answers: Sequence[str]) -> bool:
    """Some answer occurs in the passage as whole words, after normalisation."""
    words = f" {normalize_answer(passage)} "
    return any(f" {normalize_answer(a)} " in words for a in answers if normalize_answer(a))
