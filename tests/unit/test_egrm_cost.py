"""Routing and cost accounting on a simulated policy with known per-difficulty correctness: no
model, so every route's accuracy, tokens, forward passes, FLOPs and trigger rate are exact."""

import pytest

from components.grm_scorer.cost import FlopsModel, Sample, apportion_wall, summarize
from components.grm_scorer.gating import Item, decide

M, K, DIRECT_TOKENS = 5, 4, 3
FLOPS = FlopsModel(non_embedding_params=1000, n_layers=2, d_model=8)


def cot_tokens(k):
    return 6 * (k - 1) + 4  # "a+b=c;" per step, then "A:n" and EOS


def simulated_item(k):
    """Easy items (k <= 3): every direct sample right. Hard ones: direct samples split 2/2/1 over
    distractors, so consensus 0.4 < tau; CoT paths: 3 right and 1 wrong, and the scorer ranks the
    wrong one first for k = 7 only (so the scorer and the vote disagree there)."""
    gold = str(10 * k)
    direct = [gold] * M if k <= 3 else [str(10 * k + 1)] * 2 + [str(10 * k - 1)] * 2 + [gold]
    cot_answers = [gold, gold, gold, str(10 * k + 10)]
    scores = [0.9, 0.8, 0.7, 0.95 if k == 7 else 0.1]
    flops_d = FLOPS.decoder_flops(5, DIRECT_TOKENS)
    flops_c = FLOPS.decoder_flops(8, cot_tokens(k))
    return Item(
        gold,
        k,
        tuple(Sample(a, DIRECT_TOKENS, flops_d, 0.001) for a in direct),
        tuple(
            Sample(a, cot_tokens(k), flops_c, 0.002, score=s, score_flops=50.0, score_wall_s=0.0005)
            for a, s in zip(cot_answers, scores, strict=True)
        ),
    )


ITEMS = [simulated_item(k) for k in range(2, 8)]  # k = 2..7, one item each


def test_flops_formula():
    # 5 prompt + 3 new tokens: 7 processed; 2N*7 + 2*L*d*(7*8/2)
    assert FLOPS.decoder_flops(5, 3) == 2 * 1000 * 7 + 2 * 2 * 8 * 28
    assert FLOPS.encoder_flops(4) == 2 * 1000 * 4 + 2 * 2 * 8 * 16


def test_always_direct_costs_one_greedy_decoding():
    summary = summarize([decide(item, "always_direct") for item in ITEMS])
    # greedy sample 0 is right for k <= 3 only (hard items' sample 0 is a distractor)
    assert summary["accuracy"] == pytest.approx(2 / 6)
    assert summary["tokens_per_item"] == DIRECT_TOKENS
    assert summary["trigger_rate"] == 0.0


def test_always_cot_vote_and_scorer():
    vote = summarize([decide(item, "cot_vote") for item in ITEMS])
    scorer = summarize([decide(item, "cot_scorer") for item in ITEMS])
    mean_cot = sum(cot_tokens(k) for k in range(2, 8)) / 6
    assert vote["accuracy"] == 1.0 and scorer["accuracy"] == pytest.approx(5 / 6)
    assert vote["tokens_per_item"] == pytest.approx(K * mean_cot)
    assert scorer["tokens_per_item"] == vote["tokens_per_item"]  # scoring generates nothing
    assert scorer["forward_passes_per_item"] == pytest.approx(K * mean_cot + K)
    assert scorer["wall_ms_per_item"] == pytest.approx(1000 * K * (0.002 + 0.0005))
    assert vote["trigger_rate"] == scorer["trigger_rate"] == 1.0


def test_gating_routes_hard_items_to_cot_and_pays_for_both_phases():
    outcomes = [decide(item, "egrm", tau=0.8) for item in ITEMS]
    assert [o.route for o in outcomes] == ["direct"] * 2 + ["cot"] * 4
    summary = summarize(outcomes)
    assert summary["trigger_rate"] == pytest.approx(4 / 6)
    assert summary["accuracy"] == pytest.approx(5 / 6)  # the scorer's pick fails at k = 7
    hard_cot = sum(cot_tokens(k) for k in range(4, 8))
    assert summary["tokens_per_item"] == pytest.approx((6 * M * DIRECT_TOKENS + K * hard_cot) / 6)
    expected_flops = (
        6 * M * FLOPS.decoder_flops(5, DIRECT_TOKENS)
        + sum(K * (FLOPS.decoder_flops(8, cot_tokens(k)) + 50.0) for k in range(4, 8))
    ) / 6
    assert summary["gflops_per_item"] == pytest.approx(expected_flops / 1e9)
    gated_vote = summarize([decide(item, "gated_vote", tau=0.8) for item in ITEMS])
    assert gated_vote["accuracy"] == 1.0


def test_tau_extremes():
    # tau = 0: never CoT, the majority of the probe answers (wrong on every hard item)
    never = summarize([decide(item, "egrm", tau=0.0) for item in ITEMS])
    assert never["trigger_rate"] == 0.0 and never["accuracy"] == pytest.approx(2 / 6)
    assert never["tokens_per_item"] == M * DIRECT_TOKENS
    # tau = 1: CoT unless all M samples agree
    strict = summarize([decide(item, "egrm", tau=1.0) for item in ITEMS])
    assert strict["trigger_rate"] == pytest.approx(4 / 6)


def test_wall_time_is_apportioned_by_tokens():
    assert apportion_wall(1.0, [1, 3]) == pytest.approx([0.25, 0.75])
    assert apportion_wall(1.0, [0, 0]) == pytest.approx([0.5, 0.5])
