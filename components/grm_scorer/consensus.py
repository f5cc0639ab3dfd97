"""Answer extraction, normalisation and consensus over M direct decodings (E-GRM steps 2-4).

Consensus(x) = share of the most common normalised answer; the normalised answer entropy
H = -sum p log p / log M is logged as a diagnostic only. Routing: consensus >= tau answers
directly (ties at exactly tau go direct, as in the paper)."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

AnswerFormat = Literal["marker", "last_number", "first_number"]
_MARKED = re.compile(r"(?:^|[;\s])([AV]):\s*(\S+)")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_STRIP = ".,;:\"'"


def normalize_answer(answer: str) -> str:
    """As the reference code: lower-case, strip whitespace, then strip trailing punctuation."""
    return answer.strip().lower().rstrip(_STRIP)


def extract_answer(text: str, answer_format: AnswerFormat = "marker") -> str:
    """The final verdict of a generation, normalised; "" when there is none.

    marker: the value after the last `A:` (answer) or `V:` (verdict) segment (our tiny format);
    last_number: the last number in the text (free-form answers that end with the result);
    first_number: on the first line, the first number after "=" if there is one, else the first
    number (short answers of instruct models, which often restate the sum: "7 + 7 = 14, ...")."""
    if answer_format == "last_number":
        numbers = _NUMBER.findall(text.replace(",", ""))
        return normalize_answer(numbers[-1]) if numbers else ""
    if answer_format == "first_number":
        line = text.strip().split("\n")[0].replace(",", "")
        numbers = _NUMBER.findall(line.split("=", 1)[1] if "=" in line else line)
        return normalize_answer(numbers[0]) if numbers else ""
    matches = _MARKED.findall(text.strip())
    return normalize_answer(matches[-1][1]) if matches else ""


@dataclass(frozen=True)
class Consensus:
    answer: str  # the mode (first seen among equally common answers)
    share: float  # Consensus(x) in [1/M, 1]
    entropy: float  # normalised to [0, 1]


def consensus(answers: Sequence[str]) -> Consensus:
    """Consensus of already-normalised answers. Empty answers (no verdict) count in M but never
    as agreement: M samples that all fail to answer have consensus 0, not 1."""
    if not answers:
        raise ValueError("consensus of no answers")
    m = len(answers)
    counts = Counter(answers)
    entropy = -sum(c / m * math.log(c / m) for c in counts.values())
    votes = Counter(a for a in answers if a)
    if not votes:
        return Consensus("", 0.0, entropy / math.log(m) if m > 1 else 0.0)
    # Counter.most_common keeps insertion order among ties: the first-seen answer wins
    mode, top = votes.most_common(1)[0]
    return Consensus(mode, top / m, entropy / math.log(m) if m > 1 else 0.0)


def majority_vote(answers: Sequence[str]) -> str:
    """Self-consistency: the most common non-empty answer (first seen on ties), else ""."""
    return consensus(answers).answer


def route(consensus_share: float, tau: float) -> Literal["direct", "cot"]:
    # a small tolerance so that e.g. 4/5 routes direct at tau=0.8 despite float rounding
    return "direct" if consensus_share >= tau - 1e-9 else "cot"
