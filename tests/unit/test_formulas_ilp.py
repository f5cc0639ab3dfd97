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

from components.ilp_diagnosis import attribute, facts, mcq
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


def test_fact_probe_has_no_signal_without_candidates():
    """A relation with fewer than two candidate values cannot be probed: None, not "known"."""
    known = facts.probe_facts(
        None, None, probe_records()[:1], {"capital": ["Paris"]}, n=5, seeds=(0,), threshold=0.2,
        max_length=32,
    )  # fmt: skip
    assert known == [None]
