"""Invented words for the synthetic worlds: names and attribute values no pretrained model knows,
so a world's facts can only come from its own corpus."""

from __future__ import annotations

import random

# 20 syllables: 400 two-syllable words per suffix, 8000 three-syllable names
SYLLABLES = (
    "ba", "ko", "ri", "mu", "te", "sa", "lo", "vi", "ne", "gu",
    "pa", "di", "zo", "fe", "ta", "ke", "mo", "ru", "si", "no",
)  # fmt: skip


def invented_words(
    count: int, suffix: str, rng: random.Random, taken: set[str], syllables: int = 2
) -> list[str]:
    """`count` new capitalised words ending in `suffix`, none of them in `taken` (updated)."""
    words: list[str] = []
    while len(words) < count:
        word = ("".join(rng.choice(SYLLABLES) for _ in range(syllables)) + suffix).capitalize()
        if word not in taken:
            taken.add(word)
            words.append(word)
    return words
