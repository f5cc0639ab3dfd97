"""Prompt templates and content words, read from the prompts alone (never from `meta`).

A prompt's template is the prompt with its content slots masked: digits, single characters,
and words that occur in few prompts of the same task (entity names, keys).
Records that share a template form a cluster: the distractor pool of the MCQ and the unit of
rarity."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

_WORD = re.compile(r"[A-Za-z]+|\d+|[^\sA-Za-z\d]")
SLOT = "#"
# function words dropped before near-duplicate shingling: a reworded question with the same
# content words ("what is the color of X" / "which color does X have") is a duplicate
_STOPWORDS = (
    "a an the is are was were be what which who whom whose does do did has have had of in on at "
    "to for by with from as that this these those it its tell me please"
)
STOPWORDS = frozenset(_STOPWORDS.split())


def words(text: str) -> list[str]:
    return _WORD.findall(text)


def prompt_templates(records: Sequence[dict[str, Any]], min_df: float = 0.05) -> list[str]:
    """One template per record: slots replaced by '#', so 'add: 12 + 7' -> 'add: # + #'."""
    by_task: dict[str, list[list[str]]] = defaultdict(list)
    tokenised = [words(r["prompt"]) for r in records]
    for record, tokens in zip(records, tokenised, strict=True):
        by_task[record["task"]].append(tokens)
    frequent: dict[str, set[str]] = {}
    for task, prompts in by_task.items():
        df = Counter(word.lower() for tokens in prompts for word in set(tokens))
        frequent[task] = {w for w, n in df.items() if n >= max(2, min_df * len(prompts))}
    templates = []
    for record, tokens in zip(records, tokenised, strict=True):
        keep = frequent[record["task"]]
        masked = [
            t
            if not t.isalnum()
            else SLOT
            if t.isdigit() or len(t) == 1 or t.lower() not in keep
            else t.lower()
            for t in tokens
        ]
        # neighbouring slots are one slot: names of one or several words look the same
        collapsed = [
            t for i, t in enumerate(masked) if t != SLOT or i == 0 or masked[i - 1] != SLOT
        ]
        templates.append(f"{record['task']}|" + " ".join(collapsed))
    return templates


def content_shingles(text: str) -> set[str]:
    """Unigrams and bigrams of the lowercased content words (order-aware, rewording-blind)."""
    content = [w.lower() for w in words(text) if w.isalnum() and w.lower() not in STOPWORDS]
    return set(content) | {f"{a} {b}" for a, b in zip(content, content[1:], strict=False)}


def normalise_answer(text: str) -> str:
    return " ".join(words(text.lower().strip())).strip(" .")
