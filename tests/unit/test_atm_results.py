"""The ATM page's numbers from hand-made seeds (the phenomenon gap and its gate on a G_0 that
reads, the claims' paired differences, the per-round table), and the augmentation arms' rows."""

import random

from components.atm.world import HELDOUT_FABRICATIONS, TRAIN_FABRICATIONS, build_world
from experiments.atm import report
from experiments.atm.benchmark import ARMS, augmentation_rows, deep_update


def fake_seed(seed, clean, attacked, rounds=None):
    metrics = {}
    for arm in ARMS:
        for condition in report.SHOWN_CONDITIONS:
            metrics[f"{arm}.{condition}.em"] = clean[arm] if condition == "clean" else attacked[arm]
    return {"seed": seed, "metrics": metrics, "rounds": rounds or {}}


def test_phenomenon_is_the_clean_minus_attacked_gap_of_a_generator_that_reads():
    seeds = [
        fake_seed(0, {a: 0.6 for a in ARMS}, {a: 0.2 for a in ARMS}),
        fake_seed(1, {a: 0.5 for a in ARMS}, {a: 0.3 for a in ARMS}),
        fake_seed(2, {a: 0.7 for a in ARMS}, {a: 0.1 for a in ARMS}),
    ]
    p = report.phenomenon({"seeds": seeds})
    # gaps 0.4, 0.2, 0.6: mean 0.4, sample std 0.2, t(0.975, 2) = 4.303 -> ± 0.497
    assert [round(g, 6) for g in p["gap"]] == [0.4, 0.2, 0.6]
    assert round(p["interval"].low, 3) == -0.097 and round(p["interval"].high, 3) == 0.897
    assert p["reads"] and not p["shown"]
    blind = [fake_seed(s, {a: 0.02 for a in ARMS}, {a: 0.01 for a in ARMS}) for s in range(3)]
    assert not report.phenomenon({"seeds": blind})["reads"]
    assert "does not read" in report.phenomenon_section({"seeds": blind})


def test_claims_use_paired_differences_and_the_preregistered_thresholds():
    clean = {a: 0.6 for a in ARMS} | {"atm": 0.59}
    attacked = {a: 0.2 for a in ARMS} | {"atm": 0.3, "static_aug": 0.29}
    seeds = [fake_seed(s, clean, attacked) for s in range(3)]
    rows = {r[0]: r for r in report.claim_rows(seeds)}
    assert rows["EM heldout_2_top: ATM - sft"][3] == "supported"  # +0.10 on every seed
    assert rows["EM heldout_2_top: ATM - static_aug"][3] == "not shown"  # +0.01 < +0.02
    # clean -0.01 on every seed: the interval is a point above -0.02
    assert rows["EM clean: ATM - SFT"][3] == "supported"


def test_rounds_table_pairs_strength_after_with_before_per_round():
    history = [
        {"round": 1.0, "strength_before": 2.0, "strength_after": 2.5, "em_clean": 0.5,
         "em_attacked": 0.3},
        {"round": 2.0, "strength_before": 2.4, "strength_after": 2.4, "em_clean": 0.6,
         "em_attacked": 0.5},
    ]  # fmt: skip
    seeds = [fake_seed(s, {a: 0.5 for a in ARMS}, {a: 0.3 for a in ARMS}, {"atm": history})
             for s in range(3)]  # fmt: skip
    text, means = report.rounds_table(seeds)
    assert "| atm | 1 | 2.000 ± 0.000 | 2.500 ± 0.000 |" in text
    assert means["atm em_attacked"] == [0.3, 0.5]


def test_augmentation_rows_insert_training_templates_or_other_documents():
    built = build_world(20, seed=1)
    state = {
        "people": [p.__dict__ for p in built.people],
        "values": {k: list(v) for k, v in built.values.items()},
    }
    docs = {d.id: d for d in built.corpus}
    train = [
        {
            "id": q.id,
            "question": q.text,
            "answers": [q.answer],
            "gold": list(q.gold),
            "meta": {"person": q.person, "relation": q.relation},
            "ctxs": [{"id": g, "title": docs[g].title, "text": docs[g].text} for g in q.gold],
        }
        for q in built.questions["train"]
    ]
    from components.atm.params import AtmParams

    params = deep_update(AtmParams(), {"rounds": 2, "questions_per_round": 5, "mito": {"beta": 0}})
    assert params.mito.beta == 0 and params.mito.max_steps == AtmParams().mito.max_steps
    static = augmentation_rows("static_aug", train, state, params, random.Random(0))
    noise = augmentation_rows("noise_aug", train, state, params, random.Random(0))
    assert len(static) == len(noise) == 10
    train_phrases = [t.split("{")[0] for _, t in TRAIN_FABRICATIONS if not t.startswith("{")]
    held_phrases = [t.split("{")[0] for _, t in HELDOUT_FABRICATIONS if not t.startswith("{")]
    assert any(p in row["adv_prompt"] for row in static for p in train_phrases if p)
    assert not any(p in row["adv_prompt"] for row in static for p in held_phrases if p)
    assert all(row["clean_prompt"] != row["adv_prompt"] for row in noise)
