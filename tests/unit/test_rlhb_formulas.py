"""RLHB's formulas, each against a value computed by hand: the behaviour levels and their text,
RLHBC's reward shaping, the simulator's hidden utility, RLOO, the losses and bootstrapping."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
import torch

from components.rlhb import behaviour as bh
from components.rlhb import policy, simulator
from components.rlhb.adversarial import Triplet, bootstrap_indices, shuffled
from components.rlhb.data_step import observed_score, preference_pairs
from components.rlhb.params import RlhbDataParams
from components.rlhb.scorers import bradley_terry_loss, discriminator_loss, level_loss


def test_a_level_counts_the_inner_edges_at_or_below_log1p_and_clips():
    edges = [0.0, 1.0, 2.0, 3.0]
    assert bh.level(0, edges) == 1
    assert bh.level(1.0, edges) == 1  # log1p(1) = 0.69
    assert bh.level(math.e - 1, edges) == 2  # log1p = 1.0, on an edge: up
    assert bh.level(math.exp(2) - 1, edges) == 3
    assert bh.level(1000, edges) == 3  # beyond the last edge: the top level


def test_equal_width_edges_span_the_1st_to_99th_percentile_of_log1p():
    values = np.expm1(np.arange(101) * 0.02)  # log1p = 0, 0.02, ..., 2.0
    edges = bh.fit_binning({"likes": values}, bins=2)["likes"]
    assert edges == pytest.approx([0.02, 1.0, 1.98])


def test_equal_frequency_edges_are_log1p_quantiles():
    edges = bh.fit_binning({"v": [0, 1, 3, 7]}, bins=2, mode="equal_frequency")["v"]
    assert edges == pytest.approx([0.0, (math.log(2) + math.log(4)) / 2, math.log(8)])


def test_behaviour_text_round_trip():
    text = bh.behaviour_text({"views": 4, "clicks": 3, "likes": 5, "dislikes": 1}, 5)
    assert text == "[User behavior] views: 4/5; clicks: 3/5; likes: 5/5; dislikes: 1/5"
    assert bh.parse_behaviour_text(text) == {"views": 4, "clicks": 3, "likes": 5, "dislikes": 1}


def test_expected_counts_map_level_centres_back_through_expm1():
    edges = [0.0, math.log(2), math.log(4)]
    # centres log(2)/2 and 1.5 log(2): sqrt(2) - 1 and 2 sqrt(2) - 1
    assert bh.level_centres(edges) == pytest.approx([0.414214, 1.828427], abs=1e-6)
    counts = bh.expected_counts({"likes": np.array([[0.5, 0.5]])}, {"likes": edges})
    assert counts["likes"] == pytest.approx([1.121320], abs=1e-6)


def test_reward_shaping_is_likes_minus_dislikes_over_views_clicks_plus_one():
    counts = {k: np.array([v]) for k, v in dict(likes=3, dislikes=1, views=10, clicks=2).items()}
    assert bh.shaped_reward(counts) == pytest.approx([2 / 13])
    assert observed_score({"likes": 3, "dislikes": 1, "views": 10, "clicks": 2}) == 2 / 13


def test_hidden_utility_of_a_good_and_a_bad_answer():
    world = RlhbDataParams()  # E[PV + C] = 20 * 1.3 = 26
    good = "jazz rewards patience practice daily set small goals"  # 8 words, topic, no repeat
    assert simulator.quality("jazz", good) == simulator.Quality(True, True, False)
    assert simulator.true_score("jazz", good, world) == pytest.approx((5 - 0.1) / 26)
    bad = "really really really"  # no topic, 3 words, a repeat
    assert simulator.rates(simulator.quality("jazz", bad)) == (0.1, 7)
    assert simulator.true_score("jazz", bad, world) == pytest.approx((0.1 - 7) / 26)
    # stopwords may repeat
    assert not simulator.quality("jazz", "with jazz begin slowly and and").repetition


def test_the_logging_policy_gives_exactly_the_asked_defects():
    rng = random.Random(0)
    for defects in ({"topic"}, {"length"}, {"repetition"}, {"topic", "length", "repetition"}):
        q = simulator.quality("chess", simulator.respond("chess", defects, rng))
        found = {"topic": not q.topic, "length": not q.length_ok, "repetition": q.repetition}
        assert {d for d, bad in found.items() if bad} == defects


def test_held_out_templates_are_never_logged():
    logs, service = simulator.simulate_logs(RlhbDataParams(logs=300))
    held_out = [q for q in service if not q["logged"]]
    assert len(service) == 150 and len(held_out) == 30
    assert {q["template"] for q in held_out} == {"4"}
    assert not {r["query"] for r in logs} & {q["query"] for q in held_out}


def test_rloo_advantage_is_the_return_minus_the_mean_of_the_others():
    advantages = policy.rloo_advantages(torch.tensor([[1.0, 2.0, 3.0]]))
    assert advantages.tolist() == [[-1.5, 0.0, 1.5]]
    # one rollout per prompt: the batch mean is the baseline
    assert policy.rloo_advantages(torch.tensor([[1.0], [3.0]])).tolist() == [[-1.0], [1.0]]


def test_returns_clip_the_score_and_subtract_the_kl_estimate():
    logprobs = torch.tensor([[-1.0, -1.0], [-2.0, 0.0]])
    ref = torch.tensor([[-1.5, -1.0], [-1.0, 0.0]])
    returns, kl = policy.returns(torch.tensor([6.0, -1.0]), logprobs, ref, 0.1, 5.0)
    assert kl.tolist() == [0.5, -1.0]
    assert returns.tolist() == pytest.approx([4.95, -0.9])


def test_rloo_loss_weights_each_sequence_log_probability_by_its_advantage():
    logprobs = torch.tensor([[-1.0, -1.0], [-2.0, 0.0]])  # sums -2, -2
    loss = policy.rloo_loss(logprobs, torch.tensor([[1.0], [-0.5]]))
    assert float(loss) == pytest.approx(0.5)  # -mean(1 * -2, -0.5 * -2)


def test_completion_mask_keeps_tokens_up_to_the_first_eos():
    assert policy.completion_mask(torch.tensor([[5, 2, 7, 2]]), 2).tolist() == [[1, 1, 0, 0]]
    assert policy.completion_mask(torch.tensor([[5, 6]]), 2).tolist() == [[1, 1]]


def test_discriminator_loss_uses_smoothed_targets():
    flat = discriminator_loss(torch.tensor([0.0, 0.0]), torch.tensor([1, 0]), 0.1)
    assert float(flat) == pytest.approx(math.log(2))
    # logit 2 on a real triplet, target 0.9: -(0.9 log s(2) + 0.1 log(1 - s(2)))
    loss = discriminator_loss(torch.tensor([2.0]), torch.tensor([1]), 0.1)
    assert float(loss) == pytest.approx(0.9 * 0.126928 + 0.1 * 2.126928, abs=1e-6)


def test_bradley_terry_and_level_losses():
    loss = bradley_terry_loss(torch.tensor([1.0]), torch.tensor([0.0]))
    assert float(loss) == pytest.approx(0.313262, abs=1e-6)  # -log sigmoid(1)
    levels = level_loss(torch.zeros(1, 6), torch.tensor([[1, 3]]), bins=3)
    assert float(levels) == pytest.approx(math.log(3))


def test_bootstrap_takes_the_top_share_by_reward_earlier_first_on_ties():
    rewards = torch.tensor([0.1, 0.9, 0.5, 0.9])
    assert bootstrap_indices(rewards, 0.5) == [1, 3]
    assert bootstrap_indices(rewards, 0.25) == [1]
    assert bootstrap_indices(rewards, 0.0) == []


def test_a_shuffled_triplet_keeps_query_and_response_with_another_behaviour():
    t = Triplet("q", "r", "b1")
    other = shuffled(t, ["b1", "b2"], random.Random(0))
    assert (other.query, other.response, other.behaviour) == ("q", "r", "b2")


def test_preference_pairs_choose_the_higher_observed_score():
    def log(response, likes):
        behaviour = {"views": 10, "clicks": 2, "likes": likes, "dislikes": 0}
        return {"query": "q", "response": response, "behaviour": behaviour}

    pairs = preference_pairs([log("good", 5), log("bad", 1)], seed=0)
    assert pairs and all(p["chosen"] == "good" and p["rejected"] == "bad" for p in pairs)
    assert pairs[0]["meta"]["margin"] == pytest.approx(round(5 / 13 - 1 / 13, 6))


def test_like_levels_mirror_dislikes_and_keep_the_rest_of_b_star():
    from components.rlhb.evaluate_step import level_behaviours

    b_star = "[User behavior] views: 5/5; clicks: 5/5; likes: 5/5; dislikes: 1/5"
    texts = level_behaviours(b_star, 5)
    assert texts[2] == "[User behavior] views: 5/5; clicks: 5/5; likes: 2/5; dislikes: 4/5"
    assert texts[5] == b_star


def test_a_fixed_reward_is_divided_by_its_sample_std_on_the_logs():
    from components.rlhb.baselines import normalised

    logged = [Triplet("q", str(v), "b") for v in (1.0, 2.0, 3.0)]
    reward = normalised(lambda ts: torch.tensor([float(t.response) for t in ts]), logged)
    # sample std of 1, 2, 3 is 1; of 2, 4, 6 it is 2
    assert reward([Triplet("q", "4.0", "b")]).tolist() == [4.0]
    doubled = normalised(lambda ts: torch.tensor([2 * float(t.response) for t in ts]), logged)
    assert doubled([Triplet("q", "3.0", "b")]).tolist() == [3.0]
