"""The gated inference (components/grm_scorer/inference.py): CoT paths are generated for the
questions below tau and for no other, the scorer's best path answers, and the tokens counted are
those generated. The decoders are replaced by fakes with hand-set answers and token counts."""

from types import SimpleNamespace

import numpy as np
import pytest

from components.grm_scorer import inference
from components.grm_scorer.cost import Sample
from components.grm_scorer.inference import Answer, Batch, GatedGrm, batch_metrics
from components.grm_scorer.params import GatingParams

# question -> its M = 5 direct answers: "easy" agrees 5/5 (consensus 1.0), "edge" 4/5 = tau
# exactly (goes direct), "hard" 2/5 (below tau: CoT)
DIRECT = {
    "easy": ["7", "7", "7", "7", "7"],
    "edge": ["9", "9", "8", "9", "9"],
    "hard": ["5", "6", "5", "4", "3"],
}
# hard's K = 4 CoT paths: answers and scores; the scorer prefers the third path ("6"), which the
# vote ("5", twice) would not pick
COT_ANSWERS = ["5", "5", "6", "4"]
COT_SCORES = [0.2, 0.3, 0.9, 0.1]
DIRECT_TOKENS, COT_TOKENS = 3, 10


@pytest.fixture
def grm(monkeypatch):
    calls = {"direct": [], "cot": []}

    def direct_samples(model, tokenizer, questions, gating, seed):
        calls["direct"].append(list(questions))
        rows = [
            [Sample(a, DIRECT_TOKENS, 0.0, 0.0) for a in DIRECT[q][: gating.m]] for q in questions
        ]
        return rows, None

    def cot_samples(model, tokenizer, questions, gating, seed, suffix):
        calls["cot"].append(list(questions))
        rows = [[Sample(a, COT_TOKENS, 0.0, 0.0) for a in COT_ANSWERS] for _ in questions]
        texts = [f"{q}{suffix} path {j}" for q in questions for j in range(gating.k)]
        return rows, SimpleNamespace(texts=texts)

    def score(questions, paths):
        return np.asarray(COT_SCORES * (len(paths) // len(COT_SCORES))), 0.0

    monkeypatch.setattr(inference, "direct_samples", direct_samples)
    monkeypatch.setattr(inference, "cot_samples", cot_samples)
    scorer = SimpleNamespace(score=score, config=SimpleNamespace(cot_suffix=" think"))
    return GatedGrm(None, None, scorer, GatingParams(m=5, tau=0.8, k=4), seed=0), calls


def test_cot_is_generated_only_below_tau_and_the_scorer_picks(grm):
    model, calls = grm
    batch = model.answer(["easy", "edge", "hard"])
    assert calls["cot"] == [["hard"]]  # one CoT call, for the one question below tau
    easy, edge, hard = batch.answers
    # direct: the majority, its consensus as reward, M = 5 probes of 3 tokens = 15 tokens
    assert easy == Answer("7", "direct", 1.0, 1.0, 15)
    assert edge == Answer("9", "direct", 0.8, 0.8, 15)
    # cot: the best-scored path ("6", score 0.9), consensus 2/5; 15 probe + 4 x 10 path tokens
    assert hard == Answer("6", "cot", 0.4, pytest.approx(0.9), 55)
    assert batch.tokens == 15 + 15 + 55


def test_no_cot_call_when_every_question_agrees(grm):
    model, calls = grm
    model.answer(["easy", "edge"])
    assert calls["cot"] == []


def test_baselines_pay_for_what_they_generate(grm):
    model, calls = grm
    direct = model.always_direct(["hard"])
    assert calls["direct"][-1] == ["hard"]
    assert direct.answers == [Answer("5", "direct", 1.0, 1.0, DIRECT_TOKENS)]  # greedy: sample 0
    vote = model.always_cot_vote(["easy", "hard"])
    assert calls["cot"][-1] == ["easy", "hard"]  # every question, whatever its consensus
    # vote over 5, 5, 6, 4: "5" with share 2/4; 4 paths x 10 tokens
    assert vote.answers[0] == Answer("5", "cot", 0.5, 0.5, 40)


def test_batch_metrics_by_hand():
    answers = [
        Answer("7", "direct", 1.0, 1.0, 15),
        Answer("6", "cot", 0.4, 0.9, 55),
        Answer("2", "cot", 0.2, 0.5, 50),
        Answer("9", "direct", 0.8, 0.8, 15),
    ]
    metrics = batch_metrics(Batch(answers, wall_s=0.2), ["7", "6", "3", "9"], "live")
    # 3 of 4 right; (15 + 55 + 50 + 15) / 4 = 33.75 tokens; 200 ms / 4 = 50 ms; 2 of 4 on CoT
    assert metrics == {
        "live.accuracy": 0.75,
        "live.tokens_per_item": 33.75,
        "live.wall_ms_per_item": pytest.approx(50.0),
        "live.trigger_rate": 0.5,
    }
