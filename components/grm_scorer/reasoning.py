"""A deterministic reasoning benchmark with verifiable answers and graded difficulty (E-GRM).

Questions are sums of single digits, `3+4+5=`; difficulty is the number of terms k. Each question
has a direct target `A:12` and a chain-of-thought target of running partial sums
`3+4=7;7+5=12;A:12` whose steps are checkable one by one, so any reasoning path gets a graded
quality label (`path_quality`). The pairwise judge format poses the same sum with two candidate
answers, `3+4+5= A)12 B)11`, and the verdict `V:A`. Wrong candidates are distractors (sum ± 1,
± 10): a small set of near misses, so that wrong answers can agree with each other."""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from components.common.validation import sft_expectations

if TYPE_CHECKING:  # GX is imported where expectations are built: it costs seconds
    import great_expectations as gx

TASKS = ("arith_direct", "arith_cot", "judge_direct", "judge_cot")
ANSWER_MARK, VERDICT_MARK = "A:", "V:"
_STEP = re.compile(r"^(\d+)\+(\d+)=(\d+)$")
# the whole response grammar: zero or more steps, then the final answer or verdict
RESPONSE_REGEX = r"^(?:\d+\+\d+=\d+;)*(?:A:\d+|V:[AB])$"
PROMPT_REGEX = r"^\d(?:\+\d)+=(?: A\)\d+ B\)\d+)?"


@dataclass(frozen=True)
class Problem:
    terms: tuple[int, ...]
    # judge format only: the two candidates shown and which one is right
    candidates: tuple[int, int] | None = None

    @property
    def k(self) -> int:
        return len(self.terms)

    @property
    def answer(self) -> int:
        return sum(self.terms)

    @property
    def is_judge(self) -> bool:
        return self.candidates is not None

    @property
    def gold(self) -> str:
        """The verifiable final answer: the sum, or the verdict letter."""
        if self.candidates is None:
            return str(self.answer)
        return "A" if self.candidates[0] == self.answer else "B"

    @property
    def question(self) -> str:
        text = "+".join(map(str, self.terms)) + "="
        if self.candidates is not None:
            text += f" A){self.candidates[0]} B){self.candidates[1]}"
        return text


def cot_steps(terms: Sequence[int]) -> list[str]:
    """Running partial sums: `a1+a2=s2`, `s2+a3=s3`, ..."""
    steps, total = [], terms[0]
    for term in terms[1:]:
        steps.append(f"{total}+{term}={total + term}")
        total += term
    return steps


def final_segment(problem: Problem) -> str:
    return f"{VERDICT_MARK}{problem.gold}" if problem.is_judge else f"{ANSWER_MARK}{problem.gold}"


def direct_target(problem: Problem) -> str:
    return final_segment(problem)


def cot_target(problem: Problem) -> str:
    return ";".join([*cot_steps(problem.terms), final_segment(problem)])


def distractors(answer: int) -> list[int]:
    """Near misses a weak model plausibly produces (a dropped carry, an off-by-one)."""
    return [value for value in (answer - 1, answer + 1, answer - 10, answer + 10) if value >= 0]


def natural_prompt(problem: Problem) -> str:
    """The same question in words, for pretrained instruct models that never saw our format."""
    return f"What is {' + '.join(map(str, problem.terms))}? Reply with only the number."


def make_problems(
    n: int,
    min_terms: int,
    max_terms: int,
    max_digit: int,
    rng: random.Random,
    seen: set[tuple[int, ...]],
    judge_fraction: float = 0.0,
    max_share: float = 1.0,
) -> list[Problem]:
    """`n` new problems, none in `seen` (updated), k uniform over [min_terms, max_terms] until a
    small k runs out of distinct problems. A split takes at most `max_share` of any k's space
    (there are only 81 sums of two digits): held-out splits use it to leave training its part."""
    problems: list[Problem] = []
    open_k = list(range(min_terms, max_terms + 1))
    taken = dict.fromkeys(open_k, 0)
    turn = 0
    while len(problems) < n:
        if not open_k:
            raise ValueError(f"cannot draw {n} distinct problems with these term settings")
        k = open_k[turn % len(open_k)]  # round robin: uniform over k while every k has room
        turn += 1
        if taken[k] >= max_share * max_digit**k:
            open_k.remove(k)
            continue
        for _ in range(200):
            terms = tuple(rng.randint(1, max_digit) for _ in range(k))
            if terms not in seen:
                break
        else:  # this k's space is (nearly) used up, e.g. the 81 sums of two digits
            open_k.remove(k)
            continue
        seen.add(terms)
        taken[k] += 1
        candidates = None
        if rng.random() < judge_fraction:
            wrong = rng.choice(distractors(sum(terms)))
            pair = [sum(terms), wrong]
            rng.shuffle(pair)
            candidates = (pair[0], pair[1])
        problems.append(Problem(terms, candidates))
    rng.shuffle(problems)
    return problems


def records_for(problems: Sequence[Problem], split: str, cot_suffix: str) -> list[dict[str, Any]]:
    """Two SFT records per problem (direct and CoT target); the CoT prompt carries the suffix."""
    records = []
    for index, problem in enumerate(problems):
        family = "judge" if problem.is_judge else "arith"
        meta = {
            "qid": f"{split}-{index:05d}",
            "terms": list(problem.terms),
            "k": problem.k,
            "gold": problem.gold,
            "distractors": distractors(problem.answer),
            "candidates": list(problem.candidates) if problem.candidates else None,
        }
        for mode, prompt, response in (
            ("direct", problem.question, direct_target(problem)),
            ("cot", problem.question + cot_suffix, cot_target(problem)),
        ):
            records.append(
                {
                    "id": f"{meta['qid']}-{mode}",
                    "task": f"{family}_{mode}",
                    "stage": 0,
                    "prompt": prompt,
                    "response": response,
                    "meta": {**meta, "mode": mode},
                }
            )
    return records


def problem_of(record: dict[str, Any]) -> Problem:
    meta = record["meta"]
    candidates = tuple(meta["candidates"]) if meta.get("candidates") else None
    return Problem(tuple(meta["terms"]), candidates)  # type: ignore[arg-type]


def reasoning_expectations(max_prompt: int, max_response: int) -> list[gx.expectations.Expectation]:
    """The SFT contract plus this benchmark's grammar (prompt and response formats)."""
    import great_expectations as gx

    ex = gx.expectations
    return [
        *sft_expectations(TASKS, max_prompt, max_response),
        ex.ExpectColumnValuesToMatchRegex(column="response", regex=RESPONSE_REGEX),
        ex.ExpectColumnValuesToMatchRegex(column="prompt", regex=PROMPT_REGEX),
    ]


def path_quality(problem: Problem, path: str) -> float:
    """Graded quality of a reasoning path in [0, 1]: the share of checkable items that are right.

    Items are the k-1 steps and the final answer. A step counts when it is locally valid (its left
    operand is the previous step's written result, or the first term; its right operand is the
    next term; its sum is right), so an early slip costs that step, not every later one. Extra
    segments count as wrong items, so padding a path never raises its quality."""
    segments = [s.strip() for s in path.strip().split(";") if s.strip()]
    final = segments[-1] if segments else ""
    steps = segments[:-1]
    valid, previous = 0, problem.terms[0]
    for index, step in enumerate(steps[: problem.k - 1]):
        match = _STEP.match(step)
        if not match:
            previous = None
            continue
        x, y, z = (int(g) for g in match.groups())
        if x == previous and y == problem.terms[index + 1] and z == x + y:
            valid += 1
        previous = z
    final_ok = final == final_segment(problem)
    items = max(problem.k, len(steps) + 1)
    return (valid + final_ok) / items


def slipped_path(problem: Problem, rng: random.Random) -> str:
    """A CoT path with one slip, carried on correctly from there: every later step stays locally
    valid and the answer is wrong. Slips are the two kinds tiny policies make: an arithmetic slip
    (a result off by a distractor offset) or a lookup slip (another term of the question added
    instead of the next one). Synthetic negatives for the scorer, so every prompt has pairs."""
    slip = rng.randrange(problem.k - 1)
    lookup = rng.random() < 0.5 and problem.k > 2
    steps, total = [], problem.terms[0]
    for index, term in enumerate(problem.terms[1:]):
        if index == slip and lookup:
            others = [t for i, t in enumerate(problem.terms) if i != index + 1 and t != term]
            term = rng.choice(others) if others else term + 1
        result = total + term
        if index == slip and not lookup:
            result = rng.choice([d for d in distractors(result) if d != result] or [result + 1])
        steps.append(f"{total}+{term}={result}")
        total = result
    if problem.candidates is None:
        final = f"{ANSWER_MARK}{total}"
    else:  # the verdict follows the wrong total: the candidate it matches, else the wrong letter
        letters = {problem.candidates[0]: "A", problem.candidates[1]: "B"}
        final = f"{VERDICT_MARK}{letters.get(total, 'B' if problem.gold == 'A' else 'A')}"
    return ";".join([*steps, final])
