"""The EPI speed benches' arithmetic (bench/epi_train_step.py, bench/epi_estimators.py), by hand."""

from __future__ import annotations

import threading

import pytest
import torch

from bench.epi_estimators import mask_jaccard
from bench.epi_train_step import Turns, abba_order, amortised_ratios, refresh_cost


def row(plain: float, epi: float, refresh: bool = False) -> dict:
    return {"wall": {"plain": plain, "epi": epi}, "refresh": refresh}


def test_abba_order_alternates_which_trainer_steps_first():
    assert abba_order(3) == ["plain", "epi", "epi", "plain", "plain", "epi"]


def test_turns_run_the_threads_in_the_given_order():
    turns, seen = Turns(["b", "a", "a", "b"]), []

    def work(who: str) -> None:
        for _ in range(2):
            turns.begin(who)
            seen.append(who)
            turns.end()

    threads = [threading.Thread(target=work, args=(w,)) for w in "ab"]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert seen == ["b", "a", "a", "b"]


def test_refresh_cost_is_the_extra_paired_difference_of_refresh_steps():
    """Differences: plain steps 1, 3 (median 2); refresh steps 12, 10 (median 11): 11 - 2 = 9.
    Amortised at K = 3: (3 + 3) / 2 = 3 and (9 + 3) / 6 = 2."""
    rows = [row(2, 3), row(6, 9), row(2, 14, True), row(1, 11, True)]
    refresh_s = refresh_cost(rows, "wall")
    assert refresh_s == 9
    assert amortised_ratios(rows, "wall", refresh_s, k=3) == [3.0, 2.0]
    assert refresh_cost(rows[:2], "wall") is None  # no refresh step measured


def test_mask_jaccard_over_all_tensors():
    """Tensor 1: {0, 1, 2} vs {1, 2, 3}; tensor 2: {5} vs {}: 2 shared of 3 + 3 + 1 - 2 = 5."""
    a = [torch.tensor([0, 1, 2]), torch.tensor([5])]
    b = [torch.tensor([1, 2, 3]), torch.tensor([], dtype=torch.long)]
    assert mask_jaccard(a, b) == pytest.approx(2 / 5)
    assert mask_jaccard([torch.tensor([], dtype=torch.long)], [torch.tensor([])]) == 1.0
