"""E-GRM's consensus SFT split pinned by hand: questions the base already agrees on (Consensus ≥ τ)
get the short direct target, the uncertain ones the CoT target (the paper's "partitioned
automatically via uncertainty estimation"); split=random draws P(CoT) = mix_ratio instead. Also
the short-answer extraction and the scorer's pairwise accuracy where mutation testing found them
unpinned."""

import math

import pytest
import torch

from components.grm_scorer.consensus import Consensus, consensus, extract_answer
from components.grm_scorer.cost import Sample
from components.grm_scorer.gating import Item, decide
from components.grm_scorer.grpo import pairwise_rewards, reward_function
from components.grm_scorer.losses import (
    hybrid_loss,
    pairwise_accuracy,
    pairwise_hinge,
    regression_loss,
)
from components.grm_scorer.params import GrmParams, GrpoParams
from components.grm_scorer.policy_step import choose_targets


def pair(qid: str) -> dict[str, dict]:
    return {mode: {"meta": {"qid": qid, "mode": mode}} for mode in ("direct", "cot")}


def modes(chosen: list[dict]) -> list[str]:
    return [record["meta"]["mode"] for record in chosen]


@pytest.mark.parametrize(
    ("tau", "shares", "expected"),
    [
        # τ = 0.8, M = 5: 5/5 and 4/5 agree (4/5 is exactly τ: direct), 3/5, 2/5, 1/5 go CoT.
        # Catches the split inverted (cot, cot, direct, direct, direct), ties at τ sent to CoT.
        (0.8, [1.0, 0.8, 0.6, 0.4, 0.2], ["direct", "direct", "cot", "cot", "cot"]),
        # τ is read from the params (τ = 0.6 moves 3/5 to direct), not a hard-coded 0.8
        (0.6, [1.0, 0.8, 0.6, 0.4, 0.2], ["direct", "direct", "direct", "cot", "cot"]),
        # τ = 1: only unanimity answers directly; no verdict at all (share 0) always thinks
        (1.0, [1.0, 0.8, 0.0], ["direct", "cot", "cot"]),
    ],
)
def test_consensus_split_gives_direct_targets_to_confident_questions(tau, shares, expected):
    pairs = [pair(f"q{i}") for i in range(len(shares))]
    params = GrmParams.model_validate({"gating": {"tau": tau}, "policy": {"split": "consensus"}})
    chosen = choose_targets(pairs, shares, params)
    assert modes(chosen) == expected
    # each question keeps its own record (no reordering across questions)
    assert [r["meta"]["qid"] for r in chosen] == [f"q{i}" for i in range(len(shares))]


@pytest.mark.parametrize(("mix_ratio", "expected"), [(0.0, "direct"), (1.0, "cot")])
def test_random_split_ignores_consensus_and_follows_mix_ratio(mix_ratio, expected):
    # P(CoT) = mix_ratio: 0 gives only direct targets, 1 only CoT, whatever the consensus
    shares = [1.0, 0.2, 0.8, 0.0]
    params = GrmParams.model_validate({"policy": {"split": "random", "mix_ratio": mix_ratio}})
    assert (
        modes(choose_targets([pair(f"q{i}") for i in range(4)], shares, params)) == [expected] * 4
    )


def test_random_split_draws_about_mix_ratio_cot_targets():
    # 400 questions at mix_ratio 0.25: about 100 CoT (binomial sd 8.7), all at consensus 1.0
    params = GrmParams.model_validate({"policy": {"split": "random", "mix_ratio": 0.25}})
    chosen = choose_targets([pair(f"q{i}") for i in range(400)], [1.0] * 400, params)
    assert 70 <= modes(chosen).count("cot") <= 130


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # the first number after the first "=" of the first line (instruct models restate the sum)
        ("3 + 4 = 7, i.e. 7 = 7.0", "7"),
        # thousands separators are dropped before matching: 1,001 is one number
        ("1,000 + 1 = 1,001", "1001"),
        # only the first line counts, and without "=" its first number
        ("4\n= 9", "4"),
        ("no number here", ""),
    ],
)
def test_first_number_answer_format(text, expected):
    assert extract_answer(text, "first_number") == expected


def test_pairwise_accuracy_of_a_single_pair_and_of_none():
    # one prompt, labels 1 > 0: scores .8 > .3 ordered right (1.0), equal scores count half (0.5);
    # equal labels form no pair: NaN
    labels, groups = torch.tensor([1.0, 0.0]), torch.tensor([0, 0])
    assert pairwise_accuracy(torch.tensor([0.8, 0.3]), labels, groups) == 1.0
    assert pairwise_accuracy(torch.tensor([0.5, 0.5]), labels, groups) == 0.5
    assert math.isnan(pairwise_accuracy(torch.tensor([0.8, 0.3]), torch.ones(2), groups))


def test_scorer_loss_defaults_are_the_specs_delta_and_margin():
    # Huber with δ = 1 beyond δ: δ·(|d| − δ/2) = 1.5 for d = 2 (δ = 2 would give 0.5·d² = 2)
    assert float(regression_loss(torch.tensor([2.0]), torch.tensor([0.0]))) == pytest.approx(1.5)
    # hinge with m = 0.1: max(0, 0.1 − (0.5 − 0.45)) = 0.05
    scores, labels, groups = torch.tensor([0.5, 0.45]), torch.tensor([1.0, 0.0]), torch.zeros(2)
    assert float(pairwise_hinge(scores, labels, groups)) == pytest.approx(0.05)


def test_hybrid_loss_defaults_are_the_specs_weights_delta_and_margin():
    labels, groups = torch.tensor([1.0, 0.0]), torch.zeros(2)
    # d = 1.5, 0.45: Huber_1 = 1·(1.5 − 0.5) = 1.0 and 0.5·0.45² = 0.10125, mean 0.550625;
    # hinge max(0, 0.1 − 2.05) = 0. L = 0.7 · 0.550625 = 0.3854375 (δ = 2 gives 0.429)
    far = hybrid_loss(torch.tensor([2.5, 0.45]), labels, groups)
    assert float(far) == pytest.approx(0.3854375)
    # d = −0.5, 0.45: Huber mean 0.113125; hinge 0.1 − 0.05 = 0.05:
    # L = 0.7 · 0.113125 + 0.3 · 0.05 = 0.0941875; with margin 0.5 the hinge is 0.45: 0.2141875
    close = torch.tensor([0.5, 0.45])
    assert float(hybrid_loss(close, labels, groups)) == pytest.approx(0.0941875)
    assert float(hybrid_loss(close, labels, groups, margin=0.5)) == pytest.approx(0.2141875)


def sample(answer: str, score: float = math.nan) -> Sample:
    return Sample(answer=answer, tokens=2, flops=1.0, wall_s=0.1, score=score)


def test_always_direct_answers_the_greedy_sample_and_egrm_gates_at_the_default_tau():
    # direct samples 7 8 8 8 8 (sample 0 is the greedy one): always_direct answers 7, 1 decoding;
    # consensus 4/5 = 0.8 ≥ τ = 0.8 (the default): egrm answers the mode 8 directly, 5 decodings
    item = Item(
        gold="7",
        difficulty=2,
        direct=(sample("7"), *(sample("8") for _ in range(4))),
        cot=(sample("7", 0.9), sample("8", 0.1)),
    )
    greedy = decide(item, "always_direct")
    assert (greedy.answer, greedy.correct, greedy.route, greedy.tokens) == ("7", True, "direct", 2)
    gated = decide(item, "egrm")
    assert (gated.answer, gated.correct, gated.route, gated.tokens) == ("8", False, "direct", 10)
    # above the default τ the scorer's best CoT path answers: 7, at 5 direct + 2 CoT decodings
    cot = decide(item, "egrm", tau=0.9)
    assert (cot.answer, cot.correct, cot.route, cot.tokens) == ("7", True, "cot", 14)


def test_consensus_entropy_at_one_and_two_samples_and_without_any_verdict():
    # M = 1: H = 0 by definition (log 1 = 0 would divide by zero); M = 2 with two answers:
    # H = log 2 / log 2 = 1; no verdict at all: one (empty) class, H = 0, share 0
    assert consensus(["7"]) == Consensus("7", 1.0, 0.0)
    assert consensus(["a", "b"]) == Consensus("a", 0.5, 1.0)
    assert consensus([""]) == Consensus("", 0.0, 0.0)
    assert consensus(["", ""]) == Consensus("", 0.0, 0.0)


def test_best_of_k_oracle_counts_any_correct_cot_path():
    # gold 7: a CoT path answering 7 anywhere among the K makes the oracle right; without one it
    # reports the first path's answer. It pays for the K CoT paths only (2 × 2 tokens).
    direct = tuple(sample("8") for _ in range(5))
    hit = Item("7", 2, direct, (sample("8", 0.9), sample("7", 0.1)))
    miss = Item("7", 2, direct, (sample("9", 0.9), sample("8", 0.1)))
    found = decide(hit, "best_of_k_oracle")
    assert (found.answer, found.correct, found.route, found.tokens) == ("7", True, "cot", 4)
    assert decide(miss, "best_of_k_oracle").answer == "9"


# Stage 2 (GRPO): the pairwise reward of components/grm_scorer/grpo.py
# scores s = (0.9, 0.5, 0.2), correct = (1, 0, 1), beta = 0.5. Pairs with s_i > s_j, as
# (r+, r-): R_pair = s_i - s_j + beta * 1[r+ correct]
#   (0, 1): 0.4 + 0.5 = 0.9    (0, 2): 0.7 + 0.5 = 1.2    (1, 2): 0.3 + 0 = 0.3
# r0 wins both:            (0.9 + 1.2) / 2 = 1.05
# r1 loses (0, 1), wins (1, 2): (-0.9 + 0.3) / 2 = -0.30
# r2 loses both:           (-1.2 - 0.3) / 2 = -0.75
SCORES, CORRECT, EXPECTED = (0.9, 0.5, 0.2), (True, False, True), [1.05, -0.30, -0.75]


def test_pairwise_reward_of_a_three_path_group():
    assert pairwise_rewards(SCORES, CORRECT, 0.5) == pytest.approx(EXPECTED)


def test_the_loser_side_is_negated_and_beta_counts():
    # sign flip broken (r- also gets +R_pair): r1 = (0.9 + 0.3) / 2 = 0.6, not -0.3
    assert pairwise_rewards(SCORES, CORRECT, 0.5)[1] < 0
    # without the beta term r0 = (0.4 + 0.7) / 2 = 0.55; with beta = 1: (1.4 + 1.7) / 2 = 1.55
    assert pairwise_rewards(SCORES, CORRECT, 0.0)[0] == pytest.approx(0.55)
    assert pairwise_rewards(SCORES, CORRECT, 1.0)[0] == pytest.approx(1.55)
    # the bonus goes to r+ only: r2 is correct but loses both its pairs
    assert pairwise_rewards(SCORES, CORRECT, 0.5)[2] == pytest.approx(-0.75)


def test_a_group_of_equal_scores_gets_the_correctness_bonus_only():
    assert pairwise_rewards((0.4, 0.4, 0.4), (True, False, True), 0.5) == [0.5, 0.0, 0.5]


class FixedScorer:
    """Fixed scores for the paths; keeps the questions it was handed."""

    def __init__(self, scores):
        self.scores, self.questions = scores, None

    def score(self, questions, paths):
        import numpy as np

        self.questions = list(questions)
        return np.asarray(self.scores[: len(paths)]), 0.0


def test_reward_function_scores_each_group_apart_and_vanilla_is_correctness():
    params = GrmParams(grpo=GrpoParams(num_generations=3))
    completions = ["A:12", "5+7=13;A:13", "A:12", "A:3", "A:4", "A:3"]
    question = ["5+7="] * 3 + ["1+2="] * 3
    gold = ["12"] * 3 + ["3"] * 3
    logged = {}
    scorer = FixedScorer([0.9, 0.5, 0.2, 0.9, 0.5, 0.2])
    pairwise = reward_function(params, scorer)
    rewards = pairwise(completions, question, gold, log_metric=logged.__setitem__)
    assert rewards == pytest.approx(EXPECTED * 2)  # both groups are the worked example
    assert scorer.questions == question  # each path scored against its own question
    assert logged["correct"] == pytest.approx(4 / 6)
    vanilla = reward_function(GrmParams(grpo=GrpoParams(reward="vanilla")), None)
    assert vanilla(completions, question, gold) == [1.0, 0.0, 1.0, 1.0, 0.0, 1.0]
    with pytest.raises(ValueError, match="groups"):
        pairwise(completions, ["5+7=", "1+2="] * 3, gold)


def test_correctness_reads_the_configured_answer_format_against_the_lowercased_gold():
    """first_number reads "12" from "5+7 = 12, done" (marker finds no `A:` in either);
    golds compare lowercased, as extract_answer normalises: "A:Lima" is right for gold "Lima"."""
    from components.grm_scorer.grpo import is_correct
    from components.grm_scorer.params import GatingParams

    assert is_correct(["5+7 = 12, done", "5+7 = 13"], ["12"] * 2, "first_number") == [True, False]
    assert is_correct(["A:Lima", "A:Rome"], ["Lima", "Lima"], "marker") == [True, False]
    with pytest.raises(ValueError):
        is_correct(["A:12"], ["12", "12"], "marker")
    params = GrmParams(
        gating=GatingParams(answer_format="first_number"), grpo=GrpoParams(reward="vanilla")
    )
    assert reward_function(params, None)(["5+7 = 12", "5+7 = 13"], ["5+7="] * 2, ["12"] * 2) == [
        1.0,
        0.0,
    ]


def test_grpo_config_carries_each_param_to_trl(tmp_path):
    """A step's batch is prompts_per_step × G completions (3 × 4 = 12); TRL's beta is our KL
    coefficient, our beta stays in the reward; sampling follows the CoT gate's top-p and length."""
    from components.grm_scorer.grpo import grpo_config
    from components.grm_scorer.params import GatingParams

    params = GrmParams(
        seed=7,
        gating=GatingParams(cot_top_p=0.9, max_new_tokens_cot=20),
        grpo=GrpoParams(
            steps=11, num_generations=4, prompts_per_step=3, learning_rate=2e-5, kl_coef=0.1,
            beta=0.3, epsilon=0.25, temperature=0.6, loss_type="dr_grpo", logging_steps=2,
        ),
    )  # fmt: skip
    config = grpo_config(params, tmp_path)
    assert (config.output_dir, config.max_steps, config.seed) == (str(tmp_path), 11, 7)
    assert (config.per_device_train_batch_size, config.num_generations) == (12, 4)
    assert (config.learning_rate, config.lr_scheduler_type.value) == (2e-5, "constant")
    assert (config.beta, config.epsilon, config.loss_type) == (0.1, 0.25, "dr_grpo")
    assert (config.temperature, config.top_p, config.max_completion_length) == (0.6, 0.9, 20)
    assert (config.logging_steps, config.report_to, config.save_strategy.value) == (
        2, ["mlflow"], "no",
    )  # fmt: skip
    assert config.use_cpu is not torch.cuda.is_available()  # TRL's bf16 default needs a GPU
    assert (config.dataloader_num_workers, config.disable_tqdm) == (0, True)
