"""ILP method modules on hand-made inputs: MCQ building and BoN sampling, one forward pass per
batch, JSD, near-duplicates, trajectories, rarity, OpenIE patterns, rules and the report."""

import numpy as np
import pytest
import torch

from components.common.models import build_tiny_model, render_prompt
from components.common.params import TinyModelParams
from components.common.scoring import mean_logprobs, shared_prefix_logprobs
from components.common.sft import encode_record
from components.common.tokenizer import train_bpe_tokenizer
from components.ilp_diagnosis import attribute, facts, mcq, report, signals
from components.ilp_diagnosis.params import IlpRules
from components.ilp_diagnosis.templates import prompt_templates


@pytest.fixture(scope="module")
def tiny_tokenizer():
    texts = [f"question: what is the color of {n}? {c}" for n in NAMES for c in COLORS]
    return train_bpe_tokenizer(texts, vocab_size=300)


def qa(i, name, answer, task="fact_qa", template="question: what is the color of {}?"):
    return {
        "id": f"r{i}",
        "task": task,
        "stage": 1,
        "prompt": template.format(name),
        "response": answer,
    }


COLORS = ["red", "blue", "green", "amber", "teal"]
NAMES = ["Kalomi", "Ruzeta", "Vonipe", "Sudafi", "Gotaxu", "Mirupe"]


def qa_records():
    records = [qa(i, n, COLORS[i % 5]) for i, n in enumerate(NAMES)]
    records += [
        {"id": "k1", "task": "recall", "stage": 0, "prompt": "recall: abcd", "response": "123"}
    ]
    return records


def test_templates_mask_names_and_digits():
    templates = prompt_templates(qa_records())
    assert len(set(templates[:6])) == 1 and "#" in templates[0]
    assert templates[0].startswith("fact_qa|question : what is the color of #")
    adds = [qa(i, str(i), "a", task="add", template="add: 12 + {}") for i in range(2)]
    assert prompt_templates(adds)[0] == "add|add : # + #"


def test_questions_pool_answers_of_the_same_cluster_deterministically():
    records = qa_records()
    questions = mcq.build_questions(records, pool_size=4, seed=0)
    assert questions == mcq.build_questions(records, pool_size=4, seed=0)
    for record, question in zip(records[:6], questions[:6], strict=True):
        assert len(question.candidates) == 4 and len(set(question.candidates)) == 4
        assert question.candidates[question.gold] == record["response"]
        assert set(question.candidates) <= set(COLORS)
    # the recall record has no alternatives of its type: free-form mode
    assert questions[6].free_form and questions[6].gold == -1


def test_hard_distractors_are_the_models_likeliest_wrong_answers():
    question = mcq.Question("q", "p", "a", ("a", "b", "c", "d", "e"), 0)
    scores = [np.log(np.array([0.05, 0.1, 0.5, 0.05, 0.3]))]
    assert mcq.choose_options(scores, [question], 2, "hard") == [(0, 2, 4)]
    assert mcq.choose_options(scores, [question], 2, "random") == [(0, 1, 2)]
    (probs,) = mcq.option_distribution(scores, [(0, 2, 4)])
    np.testing.assert_allclose(probs, [0.05 / 0.85, 0.5 / 0.85, 0.3 / 0.85])


def test_bon_pass_rates_sample_the_option_distribution():
    probs = [np.array([1.0, 0, 0, 0]), np.array([0, 1.0, 0, 0]), np.full(4, 0.25), np.zeros(0)]
    rates = mcq.bon_pass_rates(probs, [0, 0, 2, -1], n=5, seeds=[0, 1, 2])
    assert (rates[0] == 1).all() and (rates[1] == 0).all()
    assert set(np.round(rates[2] * 5).astype(int)) <= set(range(6))
    assert np.isnan(rates[3]).all()
    np.testing.assert_array_equal(rates, mcq.bon_pass_rates(probs, [0, 0, 2, -1], 5, [0, 1, 2]))


@pytest.fixture(scope="module")
def tiny_model(tiny_tokenizer):
    torch.manual_seed(0)
    arch = TinyModelParams(
        hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2
    )
    return build_tiny_model(arch, tiny_tokenizer)


def test_all_options_of_a_batch_go_through_one_forward_pass(tiny_model, tiny_tokenizer):
    records = qa_records()[:6]
    questions = mcq.build_questions(records, pool_size=4, seed=0)
    calls = []
    hook = tiny_model.register_forward_hook(lambda module, args, output: calls.append(1))
    scores = mcq.candidate_scores(tiny_model, tiny_tokenizer, questions, 48, batch_size=64)
    hook.remove()
    # 6 prompts encoded once, then 6 x 4 candidates on their cached prefixes
    assert len(calls) == 2
    assert all(len(s) == 4 and (s < 0).all() for s in scores)


def test_shared_prefix_scores_equal_scoring_each_sequence_alone(tiny_model, tiny_tokenizer):
    prompts = ["question: what is the color of Kalomi?", "q?", "question: what is the"]
    options = [[" red", " blue", "green and more"], ["red", "x"], [" teal", "a b c d", "z"]]
    rendered = [render_prompt(tiny_tokenizer, p) for p in prompts]
    shared = shared_prefix_logprobs(tiny_model, tiny_tokenizer, rendered, options, 48, 5)
    for prompt, opts, (sums, counts) in zip(prompts, options, shared, strict=True):
        features = [
            encode_record(tiny_tokenizer, {"prompt": prompt, "response": o}, 48) for o in opts
        ]
        alone = mean_logprobs(tiny_model, tiny_tokenizer, features)
        torch.testing.assert_close(sums / counts, alone, atol=1e-5, rtol=0)


def test_free_form_mode_samples_generations_and_matches_exactly(tiny_model, tiny_tokenizer):
    model = tiny_model
    (question,) = mcq.build_questions(qa_records()[-1:], pool_size=4, seed=0)
    assert question.free_form
    rates = mcq.sampled_exact_match(model, tiny_tokenizer, [question], 2, [0, 1], max_new_tokens=2)
    assert rates.shape == (1, 2) and set(rates.ravel()) <= {0.0, 0.5, 1.0}


def test_jsd_is_zero_for_equal_and_one_bit_for_disjoint_distributions():
    assert signals.jsd_bits(np.array([0.5, 0.5]), np.array([0.5, 0.5])) == pytest.approx(0)
    assert signals.jsd_bits(np.array([1.0, 0]), np.array([0, 1.0])) == pytest.approx(1)


def test_contradictions_find_reworded_duplicates_with_other_answers():
    records = [
        qa(0, "Kalomi", "red"),
        qa(1, "Kalomi", "blue", template="question: which color does {} have?"),
        qa(2, "Ruzeta", "blue"),
        qa(3, "Ruzeta", "blue"),  # same answer: no contradiction
        qa(4, "Vonipe", "teal", template="question: what is the color of the friend of {}?"),
        qa(5, "Vonipe", "red"),
    ]
    found = signals.contradictions(records, "minhash", threshold=0.8)
    assert found[0] == ["r1"] and found[1] == ["r0"]
    assert found[2] == found[3] == found[4] == found[5] == []


def test_trajectory_learned_then_forgotten_and_slope():
    forgotten = signals.trajectory_signals([(0, 3.0), (10, 0.1), (20, 2.0), (30, 2.5)], 0.3, 0.2)
    assert forgotten["ever_learned"] and forgotten["forgotten"]
    falling = signals.trajectory_signals([(0, 3.0), (50, 2.5), (100, 2.0)], 0.3, 0.5)
    assert not falling["ever_learned"] and falling["slope_per_50"] == pytest.approx(-0.5)


def test_rare_clusters_cover_at_most_the_quantile():
    templates = ["a"] * 90 + ["b"] * 6 + ["c"] * 4
    rare = signals.rare_clusters(templates, 0.1)
    assert sum(rare) == 10 and not rare[0]
    assert sum(signals.rare_clusters(templates, 0.05)) == 4


def test_openie_patterns():
    assert facts.extract("question: what is the color of Kalo Mi?", "red") == [
        facts.Triple("Kalo Mi", "color", "red")
    ]
    assert facts.extract("What is the capital of France?", "Paris")[0].subject == "France"
    two = facts.extract("question: what is the color of the friend of Kalo?", "red")
    assert [t.relation for t in two] == ["friend", "color"] and two[0].object is None
    assert facts.extract("reverse: a b c", "c b a") == []


def signal(**overrides):
    base = {
        "contradicts": [],
        "base_correct": False,
        "base_answer": "x",
        "base_confidence": 0.2,
        "jsd": 0.5,
        "fact_known": 1.0,
        "ever_learned": False,
        "forgotten": False,
        "loss_min": 1.0,
        "loss_final": 1.0,
        "stage": 1,
        "position": 0.5,
        "slope_per_50": 0.0,
        "rare": False,
        "complex": False,
        "cluster_size": 50,
        "hops": 1,
    }
    return base | overrides


@pytest.mark.parametrize(
    ("overrides", "label"),
    [
        ({"contradicts": ["r9"], "base_confidence": 0.9, "fact_known": 0.0}, "C3"),
        ({"base_confidence": 0.9, "fact_known": 0.0}, "C2"),
        ({"fact_known": 0.0, "jsd": 0.01}, "C1"),
        ({"ever_learned": True, "position": 0.0}, "C4"),
        ({"rare": True}, "C5"),
        ({"slope_per_50": -0.01}, "C5"),
        ({}, "unattributed"),
        # the base knows the record's facts: a confident wrong answer is not a conflict
        ({"base_confidence": 0.9, "rare": True}, "C5"),
    ],
)
def test_rules_fire_in_order(overrides, label):
    result = attribute.attribute(signal(**overrides), IlpRules(), tau=0.1, c4_gate=True)
    assert result["label"] == label


def test_multi_label_keeps_every_rule_that_fired_and_its_evidence():
    result = attribute.attribute(
        signal(contradicts=["r9"], base_confidence=0.9, fact_known=0.0, rare=True),
        IlpRules(),
        tau=0.1,
        c4_gate=True,
    )
    assert result["label"] == "C3" and result["labels"] == ["C2", "C3", "C5"]
    assert result["evidence"]["C2"]["base_confidence"] == 0.9
    # no early-vs-late gap: the forgetting rule stays off
    off = attribute.attribute(signal(ever_learned=True, position=0.0), IlpRules(), 0.1, False)
    assert off["label"] == "unattributed"


def test_ground_truth_report_counts_and_f1():
    rows = [
        {"id": "a", "unlearned": True, "analysed": True, "label": "C1"},
        {"id": "b", "unlearned": True, "analysed": True, "label": "C1"},
        {"id": "c", "unlearned": True, "analysed": True, "label": "C2"},
        {"id": "d", "unlearned": False, "analysed": False},
    ]
    truth = {"a": "C1", "b": "C2", "c": "C2", "d": "control"}
    result = report.ground_truth_report(rows, truth)
    assert result["confusion"]["rows"] == ["C1", "C2", "control"]
    assert result["confusion"]["matrix"][1][:2] == [1, 1]
    assert (
        result["per_cause"]["C1"]["precision"] == 0.5 and result["per_cause"]["C2"]["recall"] == 0.5
    )
    assert result["macro_f1"] == pytest.approx((2 / 3 + 2 / 3) / 2)
    assert result["unlearned_rate_by_planted"] == {"C1": 1.0, "C2": 1.0, "control": 0.0}
