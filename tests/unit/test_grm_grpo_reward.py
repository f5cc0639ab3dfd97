"""E-GRM stage 2's rewards (components/grm_scorer/grpo.py), against hand computations."""

import json

import pytest

from components.common.io import ProjectError
from components.grm_scorer.grpo import pairwise_rewards, reward_function
from components.grm_scorer.grpo_step import grpo_prompts, pass_through
from components.grm_scorer.params import GrmParams, GrpoParams

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
    def __init__(self, scores):
        self.scores = scores

    def score(self, questions, paths):
        import numpy as np

        return np.asarray(self.scores[: len(paths)]), 0.0


def test_reward_function_scores_each_group_apart_and_vanilla_is_correctness():
    params = GrmParams(grpo=GrpoParams(num_generations=3))
    completions = ["A:12", "5+7=13;A:13", "A:12", "A:3", "A:4", "A:3"]
    question = ["5+7="] * 3 + ["1+2="] * 3
    gold = ["12"] * 3 + ["3"] * 3
    logged = {}
    pairwise = reward_function(params, FixedScorer([0.9, 0.5, 0.2, 0.9, 0.5, 0.2]))
    rewards = pairwise(completions, question, gold, log_metric=logged.__setitem__)
    assert rewards == pytest.approx(EXPECTED * 2)  # both groups are the worked example
    assert logged["correct"] == pytest.approx(4 / 6)
    vanilla = reward_function(GrmParams(grpo=GrpoParams(reward="vanilla")), None)
    assert vanilla(completions, question, gold) == [1.0, 0.0, 1.0, 1.0, 0.0, 1.0]
    with pytest.raises(ValueError, match="groups"):
        pairwise(completions, ["5+7=", "1+2="] * 3, gold)


def test_prompts_are_the_cot_records_cycled(tmp_path):
    import json

    data = tmp_path / "train.jsonl"
    records = [
        {"prompt": "1+2=", "meta": {"mode": "direct", "gold": "3", "terms": [1, 2]}},
        {"prompt": "1+2=\nthink", "meta": {"mode": "cot", "gold": "3", "terms": [1, 2]}},
        {"prompt": "4+4=\nthink", "meta": {"mode": "cot", "gold": "8", "terms": [4, 4]}},
    ]
    data.write_text("".join(json.dumps(r) + "\n" for r in records))
    prompts = grpo_prompts(data, 3)
    assert [p["prompt"] for p in prompts] == ["1+2=\nthink", "4+4=\nthink", "1+2=\nthink"]
    assert prompts[1] == {"prompt": "4+4=\nthink", "question": "4+4=", "gold": "8"}


def test_bad_inputs_name_the_file_and_field(tmp_path):
    data = tmp_path / "train.jsonl"
    data.write_text('{"prompt": "1+2=", "meta": {"mode": "cot"}}\n')
    with pytest.raises(ProjectError) as error:
        grpo_prompts(data, 1)
    assert error.value.file == data and error.value.line == 1 and error.value.field == "meta"
    with pytest.raises(ProjectError, match="no config.json") as error:
        pass_through(tmp_path / "missing", tmp_path / "out", tmp_path / "reports")
    assert error.value.file == tmp_path / "missing"


def test_steps_zero_passes_the_policy_through_without_torch(tmp_path):
    import subprocess
    import sys

    policy = tmp_path / "policy"
    policy.mkdir()
    (policy / "config.json").write_text("{}")
    (policy / "model.safetensors").write_bytes(b"weights")
    code = (
        "import sys\nfrom pathlib import Path\n"
        "from components.grm_scorer.grpo_step import run\n"
        "from components.grm_scorer.params import GrmParams\n"
        f"m = run(GrmParams(), 'tiny', Path('nowhere'), Path({str(policy)!r}), Path('nowhere'),"
        f" Path({str(tmp_path / 'out')!r}), Path({str(tmp_path / 'reports')!r}))\n"
        "assert m == {'grpo.steps': 0.0}, m\n"
        "print(sorted({'torch', 'trl', 'mlflow', 'transformers'} & set(sys.modules)))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
    assert (tmp_path / "out" / "model.safetensors").read_bytes() == b"weights"
    # a declared DVC output of the stage: it must exist after a pass-through too
    assert json.loads((tmp_path / "reports" / "source.json").read_text())["grpo.steps"] == 0
