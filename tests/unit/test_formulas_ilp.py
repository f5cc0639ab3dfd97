"""ILP's core formulas pinned by hand-computed values: each test fails on a named mutation.

- "unlearned on every seed" (pass rate below the threshold on all seeds), not on any seed;
- the sign of the C4 gate (early records unlearned more often than late ones) and of C4's
  position rule;
- the fact probe: a fact is known only when its BoN pass rate reaches the threshold on some seed,
  never forced to "known".
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from components.ilp_diagnosis import attribute, facts, mcq, signals
from components.ilp_diagnosis.params import IlpRules


def question(i: int) -> mcq.Question:
    return mcq.Question(f"r{i}", f"what is the color of E{i}?", "red", ("red", "a", "b", "c"), 0)


def test_unlearned_means_below_the_threshold_on_every_seed(monkeypatch):
    """detect() end to end with the model's scores and the BoN draws replaced by fixed values.

    threshold 0.2, pass rates per seed (3 seeds):
      r0 [0.0, 0.2, 0.0]: 0.2 is not < 0.2 on seed 1          -> learned (an "any" rule: unlearned)
      r1 [0.0, 0.0, 0.0]: below on every seed                  -> unlearned
      r2 [0.4, 0.6, 1.0]: above everywhere                     -> learned
      r3 [0.0, 0.0, 0.6]: learned on seed 2 only               -> learned (an "any" rule: unlearned)
    """
    rates = np.array([[0.0, 0.2, 0.0], [0.0, 0.0, 0.0], [0.4, 0.6, 1.0], [0.0, 0.0, 0.6]])
    questions = [question(i) for i in range(4)]
    scores = [np.array([0.0, -1.0, -2.0, -3.0])] * 4
    monkeypatch.setattr(mcq, "candidate_scores", lambda *args, **kwargs: scores)
    monkeypatch.setattr(mcq, "bon_pass_rates", lambda probs, gold, n, seeds: rates.copy())
    found = mcq.detect(
        None, None, questions, n=5, seeds=(0, 1, 2), threshold=0.2, max_length=8,
        max_new_tokens=4,
    )  # fmt: skip
    assert found.unlearned.tolist() == [False, True, False, False]


def test_c4_gate_opens_when_early_records_are_unlearned_more_often():
    """Two stages at positions 0.0 and 0.5 (stage_positions of a 2-stage set); early = position
    < early_cut 0.3, late = the last stage (0.5).

    early unlearned [T, T, F] -> 2/3, late [F, F, T] -> 1/3: gap = 2/3 - 1/3 = 1/3 > 0.05: open.
    Mirrored (late records unlearned more often): gap = 1/3 - 2/3 = -1/3: closed."""
    positions = [0.0, 0.0, 0.0, 0.5, 0.5, 0.5]
    early_worse = [True, True, False, False, False, True]
    gap, gate = attribute.c4_gate(early_worse, positions, IlpRules())
    assert gap == pytest.approx(1 / 3) and gate is True
    late_worse = [False, False, True, True, True, False]
    gap, gate = attribute.c4_gate(late_worse, positions, IlpRules())
    assert gap == pytest.approx(-1 / 3) and gate is False
    # gap 1/3 against a threshold of 0.5: still closed (the gate compares with the threshold)
    assert attribute.c4_gate(early_worse, positions, IlpRules(early_late_gap=0.5))[1] is False


def c4_signals(position: float) -> dict:
    """A record learned once (loss 0.1 < 0.3) and forgotten, nothing else firing."""
    return {
        "contradicts": [],
        "base_correct": True,
        "base_answer": "red",
        "base_confidence": 0.9,
        "jsd": 0.5,
        "fact_known": 1.0,
        "ever_learned": True,
        "loss_min": 0.1,
        "loss_final": 2.0,
        "stage": 0,
        "position": position,
        "slope_per_50": 0.0,
        "rare": False,
        "complex": False,
        "cluster_size": 50,
        "hops": 1,
    }


def test_c4_fires_on_early_records_only_and_only_when_the_gate_is_open():
    rules = IlpRules()  # early_cut 0.3
    label = lambda position, gate: attribute.attribute(  # noqa: E731
        c4_signals(position), rules, tau=0.1, c4_gate=gate
    )["label"]
    assert label(0.0, True) == "C4"
    assert label(0.5, True) == "unattributed"  # late stage: not left-side forgetting
    assert label(0.0, False) == "unattributed"  # gate closed


def probe_records() -> list[dict]:
    return [
        {"prompt": "What is the capital of France?", "response": "Paris"},
        {"prompt": "What is the capital of Peru?", "response": "Lima"},
        {"prompt": "question: what is the color of the friend of Kalo?", "response": "red"},
        {"prompt": "question: what is the color of the friend of Lumi?", "response": "red"},
    ]


CANDIDATES = {"capital": ["Lima", "Paris", "Rome"], "color": ["blue", "red"]}


def one_hot(candidates: list[str], answer: str) -> np.ndarray:
    return np.array([float(c == answer) for c in candidates])


def test_fact_probe_knows_only_the_facts_the_model_completes(monkeypatch):
    """The model's cloze distributions are fixed one-hot, so every BoN draw is that answer:
    France -> Paris (gold): pass rate 1 >= 0.2 on every seed -> known 1.0;
    Peru -> Rome (gold Lima): pass rate 0 on every seed     -> known 0.0;
    chain Kalo: friend "Ana", color of Ana -> red (gold)     -> known 1.0;
    chain Lumi: friend "Bo", color of Bo -> blue (gold red)  -> known 0.0.
    A probe forced to "known" gives 1.0 everywhere."""
    believed = {("France", "capital"): "Paris", ("Peru", "capital"): "Rome"}
    believed |= {("Ana", "color"): "red", ("Bo", "color"): "blue"}
    friends = {"The friend of Kalo is": "Ana", "The friend of Lumi is": "Bo"}

    def cloze(model, tokenizer, probes, max_length, batch_size):
        return [one_hot(values, believed[(s, r)]) for s, r, values in probes]

    def complete(model, tokenizer, prefixes, n, seed):
        return [[friends[p]] * n for p in prefixes]

    monkeypatch.setattr(facts, "cloze_probs", cloze)
    monkeypatch.setattr(facts, "_complete", complete)
    known = facts.probe_facts(
        None, None, probe_records(), CANDIDATES, n=5, seeds=(0, 1, 2), threshold=0.2,
        max_length=32,
    )  # fmt: skip
    assert known == [1.0, 0.0, 1.0, 0.0]


def test_belief_against_each_label_from_its_cloze_distribution(monkeypatch):
    """Candidates Lima, Paris, Rome. France (gold Paris): 0.1, 0.6, 0.3 -> the best other value
    is Rome at 0.3; Peru (gold Lima): 0.2, 0.1, 0.7 -> Rome at 0.7; 2-hop records: None."""
    scored = {"France": [0.1, 0.6, 0.3], "Peru": [0.2, 0.1, 0.7]}

    def cloze(model, tokenizer, probes, max_length, batch_size):
        assert [(s, r) for s, r, _ in probes] == [("France", "capital"), ("Peru", "capital")]
        return [np.array(scored[s]) for s, _, _ in probes]

    monkeypatch.setattr(facts, "cloze_probs", cloze)
    beliefs = facts.beliefs_against_labels(None, None, probe_records(), CANDIDATES, max_length=32)
    assert beliefs == [0.3, 0.7, None, None]


def test_fact_probe_has_no_signal_without_candidates():
    """A relation with fewer than two candidate values cannot be probed: None, not "known"."""
    known = facts.probe_facts(
        None, None, probe_records()[:1], {"capital": ["Paris"]}, n=5, seeds=(0,), threshold=0.2,
        max_length=32,
    )  # fmt: skip
    assert known == [None]


# ---- attribution rules: evidence and every threshold at its boundary -------------------------

IDS = ["d1", "d2", "d3", "d4", "d5", "d6"]


def quiet_signals(**fired) -> dict:
    """No rule fires (base right, no contradiction, facts unprobed, learned late), then `fired`."""
    base = {
        "contradicts": [], "base_correct": True, "base_answer": "red", "base_confidence": 0.9,
        "jsd": 0.5, "fact_known": None, "ever_learned": True, "loss_min": 0.1, "loss_final": 2.0,
        "stage": 0, "position": 0.5, "slope_per_50": 0.0, "rare": False, "complex": False,
        "cluster_size": 50, "hops": 1,
    }  # fmt: skip
    return base | fired


def test_c3_c2_c4_evidence_rounded_to_three_decimals():
    """Six near-duplicates (five kept); the base answers "blue" at 0.61234 and SFT moved it by
    0.12345 bits >= tau 0.1, facts unprobed (a conflict); learned (loss 0.12345) then forgotten
    (2.34567) at position 0: C3 first, C2 and C4 also fire."""
    signals = quiet_signals(
        contradicts=IDS, base_correct=False, base_answer="blue", base_confidence=0.61234,
        jsd=0.12345, position=0.0, loss_min=0.12345, loss_final=2.34567, stage=2,
    )  # fmt: skip
    assert attribute.attribute(signals, IlpRules(), tau=0.1, c4_gate=True) == {
        "label": "C3",
        "labels": ["C2", "C3", "C4"],
        "evidence": {
            "C3": {"near_duplicates_with_other_answer": IDS[:5]},
            "C2": {
                "base_answer": "blue",
                "base_confidence": 0.612,
                "jsd": 0.123,
                "fact_known": None,
            },
            "C4": {"loss_min": 0.123, "loss_final": 2.346, "stage": 2},
        },
    }


def test_c1_c5_evidence():
    """The base knows 1/4 of the facts and SFT moved it 0.05432 < tau: C1; never learned, slope
    -0.123456 < -0.001, rare and complex: C5 with all three reasons (slope to 4 decimals)."""
    signals = quiet_signals(
        fact_known=0.25, jsd=0.05432, ever_learned=False, slope_per_50=-0.123456, rare=True,
        complex=True, cluster_size=3, hops=2,
    )  # fmt: skip
    assert attribute.attribute(signals, IlpRules(), tau=0.1, c4_gate=False) == {
        "label": "C1",
        "labels": ["C1", "C5"],
        "evidence": {
            "C1": {"fact_known": 0.25, "jsd": 0.054},
            "C5": {
                "fired": ["slope_per_50", "rare_template", "complex"],
                "slope_per_50": -0.1235,
                "cluster_size": 3,
                "hops": 2,
            },  # fmt: skip
        },
    }


@pytest.mark.parametrize(
    ("fired", "label"),
    [
        # C2's thresholds are inclusive: confidence 0.6 >= 0.6 and JSD 0.1 >= tau 0.1
        ({"base_correct": False, "base_confidence": 0.6, "jsd": 0.1}, "C2"),
        # the base knows exactly half of the facts (not < 0.5): no fact conflict, no C2
        ({"base_correct": False, "base_confidence": 0.9, "fact_known": 0.5}, "unattributed"),
        # ... nor C1 (facts known 0.5 is not < 0.5), though SFT barely moved it
        ({"fact_known": 0.5, "jsd": 0.05}, "unattributed"),
        # C1 needs JSD < tau strictly
        ({"fact_known": 0.25, "jsd": 0.1}, "unattributed"),
        # C4: a stage starting at early_cut 0.3 is not early
        ({"position": 0.3}, "unattributed"),
        # C5: a slope of exactly -delta is not "still improving"
        ({"ever_learned": False, "slope_per_50": -1e-3}, "unattributed"),
    ],
)
def test_rule_thresholds_at_their_boundary(fired, label):
    signals = quiet_signals(**fired)
    assert attribute.attribute(signals, IlpRules(), tau=0.1, c4_gate=True)["label"] == label


def test_a_gazetteer_adds_fact_candidates_once_per_normalised_value():
    merged = facts.add_candidates(
        {"capital": ["Rome", "Velmora"]}, {"capital": ["paris", "Rome."], "color": ["red"]}
    )
    assert merged == {"capital": ["Rome", "Velmora", "paris"], "color": ["red"]}


def test_belief_against_the_label_is_the_largest_other_probability():
    assert facts.belief_against(np.array([0.1, 0.7, 0.2]), gold=0) == 0.7
    assert facts.belief_against(np.array([0.1, 0.7, 0.2]), gold=1) == 0.2
    assert facts.belief_against(np.array([1.0]), gold=0) == 0.0


@pytest.mark.parametrize(
    ("against", "label"),
    [(0.49, "unattributed"), (0.5, "C2"), (None, "unattributed")],  # None: nothing probed
)
def test_c2_belief_option_needs_a_confident_contradicting_fact(against, label):
    signals = quiet_signals(
        base_correct=False, base_confidence=0.9, jsd=0.2, belief_against_label=against
    )
    rules = IlpRules(c2_belief=0.5)
    result = attribute.attribute(signals, rules, tau=0.1, c4_gate=False)
    assert result["label"] == label
    if label == "C2":
        assert result["evidence"]["C2"]["belief_against_label"] == against


def test_c2_belief_test_reads_only_the_fact_probe():
    """The base's MCQ is right and SFT did not move it, but its fact probe believes another
    value at 0.95 >= 0.9: C2 under the belief test; 0.85 is not enough; the belief test without
    its threshold is refused."""
    signals = quiet_signals(jsd=0.0, fact_known=0.0, belief_against_label=0.95)
    rules = IlpRules(c2_test="belief", c2_belief=0.9)
    assert attribute.attribute(signals, rules, 0.1, False)["evidence"]["C2"] == {
        "belief_against_label": 0.95,
        "fact_known": 0.0,
    }
    signals["belief_against_label"] = 0.85
    assert attribute.attribute(signals, rules, 0.1, False)["label"] == "C1"
    with pytest.raises(ValueError, match="belief needs rules.c2_belief"):
        IlpRules(c2_test="belief")


def test_c1_without_the_jsd_condition():
    """Facts unknown (0.25) but SFT moved the record (JSD 0.3 >= tau 0.1): C1 only when the
    JSD condition is dropped."""
    signals = quiet_signals(fact_known=0.25, jsd=0.3)
    assert attribute.attribute(signals, IlpRules(), 0.1, False)["label"] == "unattributed"
    dropped = IlpRules(c1_needs_low_jsd=False)
    assert attribute.attribute(signals, dropped, 0.1, False)["label"] == "C1"


def test_early_late_gap_boundaries():
    """early_cut 0.3: position 0.3 is not early: early [T] (1), late [F] (0): gap 1 (0.3 counted
    early: [T, F] -> 0.5). No early record: gap 0. A gap equal to the gate's threshold (0.5)
    leaves the gate closed."""
    unlearned, positions = [True, False, False], [0.0, 0.3, 0.6]
    assert attribute.early_late_gap(unlearned, positions, 0.3) == 1.0
    assert attribute.early_late_gap([True, True], [0.5, 0.5], 0.3) == 0.0
    gap, gate = attribute.c4_gate(
        [True, False, False], [0.0, 0.0, 0.6], IlpRules(early_late_gap=0.5)
    )
    assert (gap, gate) == (0.5, False)
    with pytest.raises(ValueError):
        attribute.early_late_gap([True], [0.0, 0.5], 0.3)


def test_jsd_threshold_is_fixed_or_the_median_of_the_known_jsds():
    """Fixed 0.2 -> 0.2; null -> median of [0.1, 0.3, 0.25] (None skipped) = 0.25; none -> 0.1."""
    jsds = [{"jsd": 0.1}, {"jsd": None}, {"jsd": 0.3}, {"jsd": 0.25}, {}]
    assert attribute.jsd_threshold(IlpRules(jsd_threshold=0.2), jsds) == 0.2
    assert attribute.jsd_threshold(IlpRules(jsd_threshold=None), jsds) == 0.25
    assert attribute.jsd_threshold(IlpRules(jsd_threshold=None), [{"jsd": None}]) == 0.1


# ---- loss trajectories -----------------------------------------------------------------------


def test_trajectory_slope_over_the_last_window_by_hand():
    """Steps 20..100, window 0.5: cut = 100 - 0.5 * (100 - 20) = 60, tail {60, 70, 90, 100}
    (60 included) with losses [0.7, 0.9, 0.3, 0.5]: mean step 80, mean loss 0.6,
    sum dx dy = (-20)(0.1) + (-10)(0.3) + (10)(-0.3) + (20)(-0.1) = -10, sum dx^2 = 1000:
    slope -0.01 per step, -0.5 per 50. Learned (0.1 < 0.3), forgotten (final 0.5 >= 0.3)."""
    steps, losses = [20, 30, 50, 60, 70, 90, 100], [2.0, 0.1, 1.0, 0.7, 0.9, 0.3, 0.5]
    found = signals.trajectory_signals(list(zip(steps, losses, strict=True)), 0.3, 0.5)
    assert found == {
        "loss_min": 0.1, "loss_final": 0.5, "ever_learned": True, "forgotten": True,
        "slope_per_50": pytest.approx(-0.5),
    }  # fmt: skip


@pytest.mark.parametrize(
    ("trajectory", "learned", "forgotten", "slope"),
    [
        # window 0.1 of 30 steps: cut 27, one point -> the last two: (0.6 - 0.25) / 10 * 50;
        # final 0.6 >= 0.3 forgotten (the one before, 0.25, would not be)
        ([(0, 0.2), (10, 0.9), (20, 0.25), (30, 0.6)], True, True, 1.75),
        # a loss of exactly 0.3 is not below it: never learned, so not forgotten
        ([(0, 0.5), (10, 0.3)], False, False, (0.3 - 0.5) / 10 * 50),
        # a final loss of exactly 0.3 is forgotten
        ([(0, 0.1), (10, 0.3)], True, True, (0.3 - 0.1) / 10 * 50),
        # a single point has no slope
        ([(5, 0.7)], False, False, 0.0),
    ],
)
def test_trajectory_edge_cases_by_hand(trajectory, learned, forgotten, slope):
    found = signals.trajectory_signals(trajectory, 0.3, 0.1)
    assert (found["ever_learned"], found["forgotten"]) == (learned, forgotten)
    assert found["slope_per_50"] == pytest.approx(slope)


# ---- rare clusters and near-duplicates --------------------------------------------------------


def test_rare_clusters_take_the_smallest_first_by_name_within_the_budget():
    """10 records, quantile 0.3 -> budget 3: a (1), b (1), then c (2) would make 4 > 3: {a, b}.
    Quantile 0.1 -> budget 1: the tie a/b goes to the name first, a (not insertion order)."""
    templates = ["b", "a", "c", "c", *["d"] * 6]
    assert signals.rare_clusters(templates, 0.3) == [True, True] + [False] * 8
    assert signals.rare_clusters(templates, 0.1) == [False, True] + [False] * 8


def test_embedding_contradictions_by_hand():
    """Unit vectors p0 = (1, 0), p1 = (0.6, 0.8), p2 = (1, 0); cosine threshold 0.6 (inclusive):
    p0-p1 0.6 red/blue -> contradiction; p0-p2 1.0 both red -> none; p1-p2 0.6 -> contradiction."""
    vectors = {"p0": [1.0, 0.0], "p1": [0.6, 0.8], "p2": [1.0, 0.0]}
    records = [
        {"id": f"r{i}", "prompt": f"p{i}", "response": answer}
        for i, answer in enumerate(["red", "blue", "red"])
    ]
    embed = lambda prompts: np.array([vectors[p] for p in prompts])  # noqa: E731
    found = signals.contradictions(records, "embedding", 0.6, embed=embed)
    assert found == [["r1"], ["r0", "r2"], ["r1"]]


def test_minhash_contradictions_need_the_exact_jaccard_to_reach_the_threshold():
    """threshold 0.6: "kalo lumi" {kalo, lumi, kalo lumi} and "kalo lumi orin" (those and orin,
    lumi orin) share 3 of 5 shingles: Jaccard exactly 0.6 (LSH with num_perm 64 and MinHash seed 1
    proposes the pair); different answers: a contradiction. Prompts without content words (empty
    shingles) never are. MinHash and LSH share num_perm (64 here, not the default)."""
    records = [
        {"id": "a", "prompt": "kalo lumi", "response": "blue"},
        {"id": "b", "prompt": "kalo lumi orin", "response": "grey"},
        {"id": "c", "prompt": "what is it", "response": "x"},
        {"id": "d", "prompt": "what is it", "response": "y"},
    ]
    found = signals.contradictions(records, "minhash", 0.6, num_perm=64)
    assert found == [["b"], ["a"], [], []]


# ---- detection: options, their distribution, free-form pass rates -----------------------------

MODEL, TOKENIZER = object(), object()  # stand-ins that only have to be handed through


def test_detect_hands_every_setting_to_its_stage(monkeypatch):
    """detect() with its defaults (3 hard distractors, sum scores, batch 64, temperature 1):

    q0 scores [2 ln 2, -100, 0, 0, 0]: hard distractors are the likeliest wrong answers, 2, 3, 4
    (not 1, the first of the pool); softmax of [2 ln 2, 0, 0, 0] = [4, 1, 1, 1] / 7.
    q1 is free-form: pass rates from sampled answers, seed 0 "lima", "Lima.", "Rome", "x" -> 2/4
    match "Lima"; seed 1 none -> [0.5, 0]: not below 0.5 on every seed -> learned.
    q2 gold certain -> pass rate 1; q3 gold impossible -> 0 on both seeds -> unlearned."""
    questions = [
        mcq.Question("q0", "p0", "red", ("red", "w1", "w2", "w3", "w4"), 0),
        mcq.Question("q1", "p1", "Lima", (), -1),
        mcq.Question("q2", "p2", "red", ("red", "w1"), 0),
        mcq.Question("q3", "p3", "red", ("red", "w1"), 0),
    ]
    scores = [np.array([2 * np.log(2), -100, 0, 0, 0]), np.zeros(0), np.array([0, -1e4]),
              np.array([-1e4, 0])]  # fmt: skip

    def candidate_scores(model, tokenizer, asked, max_length, batch_size, score):
        assert (model, tokenizer, asked, max_length) == (MODEL, TOKENIZER, questions, 8)
        assert (batch_size, score) == (64, "sum")
        return scores

    drawn = {0: ["lima", "Lima.", "Rome", "x"], 1: ["Rome"] * 4}

    def sampled_answers(model, tokenizer, asked, n, seed, max_new_tokens, batch_size):
        assert (model, tokenizer, asked, n, max_new_tokens) == (
            MODEL, TOKENIZER, [questions[1]], 4, 5,
        )  # fmt: skip
        return [drawn[seed]]

    monkeypatch.setattr(mcq, "candidate_scores", candidate_scores)
    monkeypatch.setattr(mcq, "sampled_answers", sampled_answers)
    found = mcq.detect(
        MODEL, TOKENIZER, questions, n=4, seeds=(0, 1), threshold=0.5, max_length=8,
        max_new_tokens=5,
    )  # fmt: skip
    assert found.options == [(0, 2, 3, 4), (), (0, 1), (0, 1)]
    assert found.probs[0].tolist() == pytest.approx([4 / 7, 1 / 7, 1 / 7, 1 / 7])
    assert found.probs[1].size == 0
    assert found.pass_rates[1:].tolist() == [[0.5, 0.0], [1.0, 1.0], [0.0, 0.0]]
    assert found.unlearned[1:].tolist() == [False, False, True]
    # temperature 2: logits [ln 2, 0, 0, 0] -> [2, 1, 1, 1] / 5
    hotter = mcq.detect(
        MODEL, TOKENIZER, questions, n=4, seeds=(0, 1), threshold=0.5, max_length=8,
        max_new_tokens=5, temperature=2.0,
    )  # fmt: skip
    assert hotter.probs[0].tolist() == pytest.approx([2 / 5, 1 / 5, 1 / 5, 1 / 5])


def test_option_distribution_divides_the_scores_by_the_temperature():
    """Scores [2 ln 2, 0] at temperature 2 -> logits [ln 2, 0] -> [2/3, 1/3]."""
    probs = mcq.option_distribution([np.array([2 * np.log(2), 0.0])], [(0, 1)], 2.0)
    assert probs[0].tolist() == pytest.approx([2 / 3, 1 / 3])


def test_candidate_scores_sum_or_mean_per_token(monkeypatch):
    """Sums [-4, -6] over [2, 0] tokens: sum -> [-4, -6]; mean -> [-2, -6] (a count of 0 counts
    as 1); the rendered prompts and the candidates go to the scorer, batch 64 by default."""

    def scored(model, tokenizer, prompts, candidates, max_length, batch_size):
        assert (prompts, candidates, max_length, batch_size) == (["p"], [["a", "b"]], 8, 64)
        return [(torch.tensor([-4.0, -6.0]), torch.tensor([2, 0]))]

    monkeypatch.setattr(mcq, "shared_prefix_logprobs", scored)
    monkeypatch.setattr(mcq.Question, "rendered", lambda self, tokenizer: self.prompt)
    questions = [mcq.Question("q", "p", "a", ("a", "b"), 0)]
    assert mcq.candidate_scores(MODEL, TOKENIZER, questions, 8)[0].tolist() == [-4.0, -6.0]
    mean = mcq.candidate_scores(MODEL, TOKENIZER, questions, 8, score="mean")
    assert mean[0].tolist() == [-2.0, -6.0]


def test_gold_probability_and_answers_of_a_detection():
    """MCQ options (0, 2, 1) with probabilities [0.2, 0.5, 0.3]: gold 0.2, answer candidate 2;
    free-form: the mean of its non-NaN pass rates (0.25), no answer."""
    questions = [
        mcq.Question("q0", "p", "red", ("red", "w1", "w2"), 0),
        mcq.Question("q1", "p", "x", (), -1),
    ]
    detection = mcq.Detection(
        options=[(0, 2, 1), ()],
        probs=[np.array([0.2, 0.5, 0.3]), np.zeros(0)],
        pass_rates=np.array([[0.0, 1.0], [0.25, np.nan]]),
        unlearned=np.array([False, False]),
    )
    assert detection.gold_prob().tolist() == [0.2, 0.25]
    assert detection.answers(questions) == ["w2", None]


# ---- diagnose(): phases 1-3 on four records, the models replaced by fixed views -------------
#
# SFT detection: r0 MCQ (red | blue, green) P = [0.1, 0.6, 0.3]; r1 free-form (no stage: 0),
# pass rates [0.2, 0.2]; r2 learned; r3 MCQ P(gold) 0.2. Unlearned r0, r1, r3; severity (gold
# probability, the free-form's mean pass rate) [0.1, 0.2, 0.9, 0.2] -> most severe first r0, then
# the tie r1, r3 in record order; top_k 2: r0, r1 analysed (an MCQ before a free-form question).
# Base view: r1 free-form -> sampled "Lima", "lima.", "Rome": answer "lima" 2/3 (correct);
# base pass rates [0.5, 0] -> 0.25. r0: P = [0, 0, 1] -> "green" (wrong), confidence 1, pass 0.
# JSD r0 (bits): p = [0, 0, 1], q = [0.1, 0.6, 0.3], m = [0.05, 0.3, 0.65];
#   KL(p||m) = log2(1 / 0.65) = 0.621488; KL(q||m) = 0.1 * 1 + 0.6 * 1 + 0.3 log2(0.3 / 0.65)
#   = 0.7 - 0.334643 = 0.365357; JSD = 0.493422. r1: token JSD 0.05 (given).
# tau_J (null: median of the analysed) = (0.05 + 0.493422) / 2 = 0.271711.
# Positions: stages {0, 1} -> r0, r1 at 0.0; r2, r3 at 0.5. C4 gate: early (< 0.3) unlearned
# [T, T] = 1, late [F, T] = 0.5: gap 0.5 > 0.05 -> open.
# r0: base wrong, confident (1 >= 0.6), JSD 0.49 >= tau, facts known 0 < 0.5 -> C2; learned
#   (loss 0.1 < 0.3) then forgotten, position 0 -> C4. Label C2. Slope (window 0.2: cut 16, one
#   step; the last two): (1.5 - 0.1) / 10 * 50 = 7.
# r1: base right; never learned, slope (0.8 - 0.9) / 10 * 50 = -0.5 < -0.001 -> C5.
# Response tokens (words) [1, 1, 1, 2]: 0.9 quantile 1.7, so only r3 is complex; hops r0 1, r1 0.

DIAGNOSE_RECORDS = [
    {"id": "r0", "task": "color", "stage": 0, "prompt": "What is the color of Kalo?",
     "response": "red"},
    {"id": "r1", "task": "capital", "prompt": "Name the capital of Peru.", "response": "Lima"},
    {"id": "r2", "task": "color", "stage": 1, "prompt": "What is the color of Lumi?",
     "response": "blue"},
    {"id": "r3", "task": "color", "stage": 1, "prompt": "What is the color of Orin?",
     "response": "dark green"},
]  # fmt: skip
TRAJECTORIES = {
    "r0": [(0, 2.0), (10, 0.1), (20, 1.5)],
    "r1": [(0, 1.0), (10, 0.9), (20, 0.8)],
    "r2": [(0, 1.0), (20, 0.1)],
    "r3": [(0, 1.0), (20, 0.1)],
}
SFT, BASE = object(), object()


class WordTokenizer:
    def __call__(self, text, add_special_tokens=True):
        return {"input_ids": text.split()}


def diagnose_params():
    from components.ilp_diagnosis.params import IlpParams

    return IlpParams(
        n_samples=3, seeds=(4, 5), unlearned_threshold=0.3, temperature=0.5, n_distractors=2,
        distractors="random", candidate_pool=3, option_score="mean", template_min_df=0.05,
        top_k=2, batch_size=7, max_length=40, max_new_tokens=6,
        rules=IlpRules(jsd_threshold=None),
    )  # fmt: skip


def fake_models(monkeypatch, tokenizer, params):
    """Replace every model call of diagnose() by the fixed views above, checking what each gets."""
    questions = [
        mcq.Question("r0", "p0", "red", ("red", "blue", "green"), 0),
        mcq.Question("r1", "p1", "Lima", (), -1),
        mcq.Question("r2", "p2", "blue", ("blue", "red"), 0),
        mcq.Question("r3", "p3", "dark green", ("dark green", "red"), 0),
    ]

    def build_questions(records, pool_size, seed, min_df):
        assert (records, pool_size, seed, min_df) == (DIAGNOSE_RECORDS, 3, 4, 0.05)
        return questions

    settings = {
        "n": 3, "seeds": (4, 5), "threshold": 0.3, "max_length": 40, "max_new_tokens": 6,
        "n_distractors": 2, "distractors": "random", "score": "mean", "batch_size": 7,
        "temperature": 0.5,
    }  # fmt: skip
    sft = mcq.Detection(
        options=[(0, 1, 2), (), (0, 1), (0, 1)],
        probs=[np.array([0.1, 0.6, 0.3]), np.zeros(0), np.array([0.9, 0.1]), np.array([0.2, 0.8])],
        pass_rates=np.array([[0.0, 0.0], [0.2, 0.2], [1.0, 1.0], [0.0, 0.2]]),
        unlearned=np.array([True, True, False, True]),
    )
    base = mcq.Detection(
        options=[(0, 1, 2), ()],
        probs=[np.array([0.0, 0.0, 1.0]), np.zeros(0)],
        pass_rates=np.array([[0.0, 0.0], [0.5, 0.0]]),
        unlearned=np.array([True, False]),
    )

    def detect(model, tok, asked, *, options=None, **kwargs):
        assert tok is tokenizer and kwargs == settings
        if model is SFT:
            assert asked == questions and options is None
            return sft
        assert model is BASE and asked == [questions[0], questions[1]]
        assert options == [(0, 1, 2), ()]
        return base

    def sampled_answers(model, tok, asked, n, seed, max_new_tokens):
        assert (model, tok, asked, n, seed, max_new_tokens) == (
            BASE, tokenizer, [questions[1]], 3, 4, 6,
        )  # fmt: skip
        return [["Lima", "lima.", "Rome"]]

    def token_jsd(base_model, sft_model, tok, records, max_length):
        assert (base_model, sft_model, tok, max_length) == (BASE, SFT, tokenizer, 40)
        assert records == [DIAGNOSE_RECORDS[1]]
        return [0.05]

    def probe_facts(model, tok, records, candidates, **kwargs):
        assert (model, tok) == (BASE, tokenizer)
        assert records == [DIAGNOSE_RECORDS[0], DIAGNOSE_RECORDS[1]]
        assert candidates == {"color": ["blue", "dark green", "red"]}
        assert kwargs == {"n": 3, "seeds": (4, 5), "threshold": 0.3, "max_length": 40,
                          "batch_size": 7}  # fmt: skip
        return [0.0, None]

    def beliefs_against_labels(model, tok, records, candidates, **kwargs):
        assert (model, tok) == (BASE, tokenizer)
        assert records == [DIAGNOSE_RECORDS[0], DIAGNOSE_RECORDS[1]]
        assert kwargs == {"max_length": 40, "batch_size": 7}
        return [0.75, None]

    monkeypatch.setattr(mcq, "build_questions", build_questions)
    monkeypatch.setattr(mcq, "detect", detect)
    monkeypatch.setattr(mcq, "sampled_answers", sampled_answers)
    monkeypatch.setattr(signals, "token_jsd", token_jsd)
    monkeypatch.setattr(facts, "probe_facts", probe_facts)
    monkeypatch.setattr(facts, "beliefs_against_labels", beliefs_against_labels)


def test_diagnose_by_hand(monkeypatch):
    from components.ilp_diagnosis.diagnose import diagnose

    tokenizer, params = WordTokenizer(), diagnose_params()
    fake_models(monkeypatch, tokenizer, params)
    rows, run = diagnose(DIAGNOSE_RECORDS, BASE, SFT, tokenizer, TRAJECTORIES, params)
    jsd_r0 = (np.log2(1 / 0.65) + 0.7 + 0.3 * np.log2(0.3 / 0.65)) / 2
    assert jsd_r0 == pytest.approx(0.493422, abs=1e-6)
    assert run == {
        "tau_jsd": pytest.approx((0.05 + jsd_r0) / 2),
        "early_late_gap": 0.5,
        "c4_gate": True,
    }
    r0, r1, r2, r3 = rows
    assert {k: v for k, v in r0.items() if k not in ("signals", "evidence")} == {
        "id": "r0", "task": "color", "stage": 0, "mode": "mcq",
        "options": ["red", "blue", "green"], "gold_prob": 0.1, "pass_rates": [0.0, 0.0],
        "unlearned": True, "analysed": True, "label": "C2", "labels": ["C2", "C4"],
    }  # fmt: skip
    assert r0["signals"] == {
        "base_pass": 0.0, "base_answer": "green", "base_confidence": 1.0, "base_correct": False,
        "jsd": pytest.approx(jsd_r0), "fact_known": 0.0, "belief_against_label": 0.75,
        "contradicts": [],
        "loss_min": 0.1, "loss_final": 1.5, "ever_learned": True, "forgotten": True,
        "slope_per_50": pytest.approx(7.0), "stage": 0, "position": 0.0,
        "template": "color|what is the color of # ?", "cluster_size": 3, "rare": False,
        "response_tokens": 1, "hops": 1, "complex": False,
    }  # fmt: skip
    assert (r1["mode"], r1["options"], r1["gold_prob"], r1["label"]) == ("free_form", [], 0.2, "C5")
    assert r1["stage"] == r1["signals"]["stage"] == 0
    assert r1["signals"]["base_answer"] == "lima" and r1["signals"]["base_correct"] is True
    assert r1["signals"]["base_confidence"] == pytest.approx(2 / 3)
    assert (r1["signals"]["base_pass"], r1["signals"]["jsd"]) == (0.25, 0.05)
    assert (r1["signals"]["fact_known"], r1["signals"]["hops"]) == (None, 0)
    assert (r1["signals"]["cluster_size"], r1["signals"]["position"]) == (1, 0.0)
    assert (r2["analysed"], r2["unlearned"], r2["stage"], r2["gold_prob"]) == (False, False, 1, 0.9)
    assert (r3["analysed"], r3["unlearned"], r3["pass_rates"]) == (False, True, [0.0, 0.2])
    assert "signals" not in r3 and "label" not in r3


def test_diagnose_hands_its_embedder_to_the_near_duplicate_signal(monkeypatch):
    """similarity=embedding: Kalo (r0, red) and Lumi (r2, blue) embed to the same unit vector, so
    each is the other's near-duplicate with another answer; Peru and Orin (cosine 0.8) do not."""
    from components.ilp_diagnosis.diagnose import diagnose

    tokenizer = WordTokenizer()
    params = diagnose_params().model_copy(
        update={"similarity": "embedding", "cosine_threshold": 0.99}
    )
    fake_models(monkeypatch, tokenizer, params)
    vectors = {"Kalo": [1.0, 0.0], "Peru": [0.0, 1.0], "Lumi": [1.0, 0.0], "Orin": [0.6, 0.8]}
    embed = lambda texts: np.array([vectors[t.split()[-1][:4]] for t in texts])  # noqa: E731
    rows, _ = diagnose(DIAGNOSE_RECORDS, BASE, SFT, tokenizer, TRAJECTORIES, params, embed=embed)
    assert rows[0]["signals"]["contradicts"] == ["r2"]
    assert rows[1]["signals"]["contradicts"] == []


def test_diagnosis_refuses_records_with_meta():
    from components.ilp_diagnosis.diagnose import diagnose

    with pytest.raises(ValueError, match="meta"):
        diagnose([{"id": "r", "meta": {}}], BASE, SFT, None, {}, diagnose_params())


def test_questions_need_three_other_answers_of_their_type():
    """Four colours: each record has exactly 3 other answers (MIN_ALTERNATIVES): MCQ with all of
    them (pool 4), gold first, under the record's id and conversation; a lone capital: free-form."""
    chat = ({"role": "user", "content": "Colour of Kalo?"}, {"role": "assistant", "content": "red"})
    records = [
        {"id": f"c{i}", "task": "color", "prompt": f"What is the color of {name}?", "response": c}
        for i, (name, c) in enumerate(zip(["Kalo", "Lumi", "Orin", "Tavi"],
                                          ["red", "blue", "green", "pink"], strict=True))
    ]  # fmt: skip
    records[0]["messages"] = list(chat)
    records.append({"id": "k", "task": "capital", "prompt": "Capital of Peru?", "response": "Lima"})
    questions = mcq.build_questions(records, pool_size=4, seed=0)
    assert [q.id for q in questions] == ["c0", "c1", "c2", "c3", "k"]
    first = questions[0]
    assert first.candidates[0] == "red" and first.gold == 0
    assert sorted(first.candidates) == ["blue", "green", "pink", "red"]
    assert first.messages == chat and questions[1].messages is None
    assert (questions[4].candidates, questions[4].gold) == ((), -1)


def test_a_chat_question_renders_its_conversation_through_the_template():
    class ChatTokenizer:
        chat_template = "any"

        def apply_chat_template(self, messages, tokenize, add_generation_prompt):
            return "|".join(m["content"] for m in messages) + "|>"

    chat = ({"role": "user", "content": "Colour of Kalo?"}, {"role": "assistant", "content": "red"})
    question = mcq.Question("c0", "plain", "red", ("red", "x"), 0, chat)
    assert question.rendered(ChatTokenizer()) == "Colour of Kalo?|>"


def test_free_form_pass_rates_are_normalised_exact_matches_per_seed(monkeypatch):
    """Gold "Paris": seed 3 draws "paris", "Rome" -> 1/2; seed 9 "Paris.", "paris" -> 1."""
    question = mcq.Question("q", "p", "Paris", (), -1)
    drawn = {3: [["paris", "Rome"]], 9: [["Paris.", "paris"]]}

    def sampled_answers(model, tokenizer, asked, n, seed, max_new_tokens, batch_size):
        assert (model, tokenizer, asked, n, max_new_tokens, batch_size) == (
            MODEL, TOKENIZER, [question], 2, 5, 16,
        )  # fmt: skip
        return drawn[seed]

    monkeypatch.setattr(mcq, "sampled_answers", sampled_answers)
    rates = mcq.sampled_exact_match(MODEL, TOKENIZER, [question], 2, (3, 9), 5)
    assert rates.tolist() == [[0.5, 1.0]]


def test_bon_pass_rates_of_one_option_and_of_no_question():
    """A single option is always drawn: rate 1; a free-form row stays NaN; no rows at all."""
    rates = mcq.bon_pass_rates([np.array([1.0]), np.zeros(0)], [0, 0], 4, (0,))
    assert rates[0].tolist() == [1.0] and np.isnan(rates[1, 0])
    assert mcq.bon_pass_rates([], [], 4, (0,)).shape == (0, 1)


# ---- dataset signals: schedule positions, complexity, the training dynamics file ----------------


def test_stage_positions_split_the_schedule_evenly():
    """Stages {0, 2, 5} start at 0, 1/3, 2/3 (a record without a stage is stage 0); one stage
    has no left side: position 1."""
    records = [{"stage": 0}, {"stage": 2}, {"stage": 2}, {"stage": 5}, {}]
    assert signals.stage_positions(records) == [0.0, 1 / 3, 1 / 3, 2 / 3, 0.0]
    assert signals.stage_positions([{"stage": 3}, {"stage": 3}]) == [1.0, 1.0]


def test_complexity_is_the_top_length_tail_or_enough_hops():
    """Word counts [1, 1, 1, 3]: 0.75 quantile = 1 (strictly longer is complex: the 3); hops
    [1, 0, 0, 0] with complex_hops 1: the 1-hop question is complex too."""
    records = [
        {"prompt": "What is the color of Kalo?", "response": "red"},
        {"prompt": "Say hi", "response": "hi"},
        {"prompt": "Say yo", "response": "yo"},
        {"prompt": "Say more", "response": "one two three"},
    ]
    lengths, hops, flags = signals.complexity(records, WordTokenizer(), 0.75, 1)
    assert (lengths, hops, flags) == ([1, 1, 1, 3], [1, 0, 0, 0], [True, False, False, True])


def test_read_dynamics_sorts_each_records_losses_by_step(tmp_path):
    path = tmp_path / "dynamics.csv"
    path.write_text("id,step,loss\na,10,0.5\na,0,1.0\nb,0,2.0\nc,0,9.0\n")
    assert signals.read_dynamics(path, ["a", "b"]) == {"a": [(0, 1.0), (10, 0.5)], "b": [(0, 2.0)]}


@pytest.mark.parametrize(
    ("text", "ids", "line", "field"),
    [
        ("id,loss\na,1.0\n", ["a"], 1, None),  # no step column
        ("id,step,loss\na,0,1.0\na,x,2.0\n", ["a"], 3, None),  # not a number, on line 3
        ("id,step,loss\na,0,1.0\n", ["a", "b"], None, "id"),  # b was not trained on
    ],
)
def test_read_dynamics_errors_name_the_line(tmp_path, text, ids, line, field):
    from components.common.io import ProjectError

    path = tmp_path / "dynamics.csv"
    path.write_text(text)
    with pytest.raises(ProjectError) as error:
        signals.read_dynamics(path, ids)
    assert (error.value.file, error.value.line, error.value.field) == (path, line, field)
    with pytest.raises(ProjectError):
        signals.read_dynamics(tmp_path / "missing.csv", ids)


def test_dataset_signals_use_the_cosine_threshold_with_embeddings():
    """similarity=embedding: r0 and r1 (different answers) at cosine 0.6 are not near-duplicates
    under cosine_threshold 0.99 (the minhash threshold 0.5 would make them so); r0 and r2 at
    cosine 1 are."""
    from components.ilp_diagnosis.diagnose import dataset_signals
    from components.ilp_diagnosis.params import IlpParams

    records = DIAGNOSE_RECORDS[:3]
    vectors = {"Kalo": [1.0, 0.0], "Peru": [0.6, 0.8], "Lumi": [1.0, 0.0]}
    embed = lambda texts: np.array([vectors[t.split()[-1][:4]] for t in texts])  # noqa: E731
    params = IlpParams(similarity="embedding", cosine_threshold=0.99, minhash_threshold=0.5)
    found = dataset_signals(records, WordTokenizer(), params, embed)
    assert found.contradicts == [["r2"], [], ["r0"]]
    assert (found.positions, found.hops) == ([0.0, 0.0, 0.5], [1, 0, 1])


def test_dataset_signals_use_the_minhash_threshold_and_template_min_df():
    """similarity=minhash: "kalo lumi orin tavi" and "... vexa" share 5 of 9 shingles (Jaccard
    0.56): near-duplicates under minhash_threshold 0.5, whatever cosine_threshold (0.9) says.
    template_min_df 0.9 of 3 prompts keeps words in >= 2.7 of them: only "kalo" stays a word."""
    from components.ilp_diagnosis.diagnose import dataset_signals
    from components.ilp_diagnosis.params import IlpParams

    records = [
        {"id": "e", "task": "t", "prompt": "kalo lumi orin tavi", "response": "blue"},
        {"id": "f", "task": "t", "prompt": "kalo lumi orin vexa", "response": "grey"},
        {"id": "g", "task": "t", "prompt": "kalo beta zeta", "response": "grey"},
    ]
    params = IlpParams(minhash_threshold=0.5, cosine_threshold=0.9, template_min_df=0.9)
    found = dataset_signals(records, WordTokenizer(), params, None)
    assert found.contradicts == [["f"], ["e"], []]
    assert found.templates == ["t|kalo #"] * 3


def test_complexity_of_no_records_is_empty():
    assert signals.complexity([], WordTokenizer(), 0.75, 1) == ([], [], [])


def test_minhash_candidates_below_the_threshold_are_not_contradictions():
    """ "kalo lumi orin" and "kalo lumi tavi" share 3 of 7 shingles (Jaccard 0.43 < 0.6); LSH
    (num_perm 64, MinHash seed 1) proposes the pair all the same: the exact Jaccard rejects it."""
    records = [
        {"id": "e", "prompt": "kalo lumi orin", "response": "blue"},
        {"id": "f", "prompt": "kalo lumi tavi", "response": "grey"},
    ]
    assert signals.contradictions(records, "minhash", 0.6, num_perm=64) == [[], []]
