"""The reasoning benchmark: targets, distinctness, graded path quality, slipped paths."""

import random

import pytest

from components.grm_scorer import reasoning
from components.grm_scorer.reasoning import Problem, cot_target, direct_target, path_quality


def test_targets_and_grammar():
    problem = Problem((3, 4, 5))
    assert problem.question == "3+4+5=" and direct_target(problem) == "A:12"
    assert cot_target(problem) == "3+4=7;7+5=12;A:12"
    judge = Problem((3, 4, 5), candidates=(11, 12))
    assert judge.question == "3+4+5= A)11 B)12" and judge.gold == "B"
    assert cot_target(judge) == "3+4=7;7+5=12;V:B"
    assert reasoning.distractors(5) == [4, 6, 15]


def test_problems_are_distinct_across_splits_and_uniform_over_k():
    rng, seen = random.Random(0), set()
    first = reasoning.make_problems(60, 2, 7, 9, rng, seen)
    second = reasoning.make_problems(200, 2, 4, 9, rng, seen, judge_fraction=0.5)
    assert {p.k for p in first} == set(range(2, 8))
    assert all(sum(p.k == k for p in first) == 10 for k in range(2, 8))
    assert not {p.terms for p in first} & {p.terms for p in second}
    assert 0.3 < sum(p.is_judge for p in second) / 200 < 0.7
    with pytest.raises(ValueError, match="distinct"):
        reasoning.make_problems(100, 2, 2, 9, rng, set())  # only 81 sums of two digits


@pytest.mark.parametrize(
    ("path", "quality"),
    [
        ("3+4=7;7+5=12;A:12", 1.0),
        ("3+4=8;8+5=13;A:13", 1 / 3),  # first slip; the second step is locally valid
        ("3+4=7;7+5=13;A:12", 2 / 3),  # wrong step, right answer
        ("3+4=7;7+5=12;A:11", 2 / 3),
        ("A:12", 1 / 3),  # the answer without its steps
        ("3+4=7;7+5=12;7+1=8;A:12", 3 / 4),  # padding costs an item
        ("garbage", 0.0),
        ("", 0.0),
    ],
)
def test_path_quality_is_graded_by_checkable_steps(path, quality):
    assert path_quality(Problem((3, 4, 5)), path) == pytest.approx(quality)


def test_slipped_paths_have_one_slip_and_a_wrong_answer():
    rng = random.Random(1)
    for terms in [(3, 4), (3, 4, 5, 6), (9, 9, 9, 9, 9, 9, 9)]:
        problem = Problem(terms)
        for _ in range(5):
            path = reasoning.slipped_path(problem, rng)
            assert path_quality(problem, path) == pytest.approx((problem.k - 2) / problem.k)
            assert not path.endswith(direct_target(problem))
    judge = Problem((3, 4, 5), candidates=(12, 11))
    assert reasoning.slipped_path(judge, rng).endswith("V:B")
