"""The KnowTuning page's numbers from hand-made seeds: the phenomenon gap, the claims' paired
differences (factuality = 1 - error rate) and the strongest baseline."""

from experiments.knowtuning import report
from experiments.knowtuning.benchmark import ARMS


def fake_seed(seed, known, completeness, error_rate, logicality=0.5):
    means = {
        arm: {"completeness": completeness[arm], "error_rate": error_rate[arm],
              "correct_facts": 5 * completeness[arm], "logicality": logicality,
              "kendall_tau": None}
        for arm in completeness
    }  # fmt: skip
    return {
        "seed": seed,
        "base_known": known,
        "arms": {
            arm: {"test": {"mean": m}, "test_unseen": {"mean": m}} for arm, m in means.items()
        },
    }


def test_phenomenon_gap_is_known_minus_stated_with_its_interval():
    seeds = [
        fake_seed(0, [0.9, 0.9], {"sft": 0.1}, {"sft": 0.9}),
        fake_seed(1, [0.8, 0.8], {"sft": 0.2}, {"sft": 0.9}),
        fake_seed(2, [0.7, 0.7], {"sft": 0.1}, {"sft": 0.9}),
    ]
    p = report.phenomenon({"seeds": seeds})
    # gaps 0.8, 0.6, 0.6: mean 2/3, sample std 0.1155, t(0.975, 2) = 4.303 -> ± 0.287
    assert [round(g, 6) for g in p["gap"]] == [0.8, 0.6, 0.6]
    assert round(p["interval"].low, 3) == 0.380 and round(p["interval"].high, 3) == 0.954
    assert p["shown"]
    assert "0.67 ± 0.12" in report.phenomenon_section({"seeds": seeds})


def test_claims_read_factuality_as_one_minus_error_rate_and_pick_the_strongest_baseline():
    completeness = {arm: 0.2 for arm in ARMS} | {"knowtuning": 0.3, "facttune": 0.25}
    errors = {arm: 0.9 for arm in ARMS} | {"knowtuning": 0.5, "facttune": 0.6}
    seeds = [fake_seed(s, [1.0], completeness, errors) for s in range(3)]
    # knowledge score = (completeness + 1 - error) / 2: facttune 0.325 beats sft's 0.15
    assert report.strongest_baseline(seeds) == "facttune"
    rows = {r[0]: r for r in report.claim_rows(seeds, "sft", "test")}
    assert rows["KT − sft, test: factuality"][1] == "0.40 ± 0.00"
    assert rows["KT − sft, test: factuality"][3] == "yes"
    assert rows["KT − sft, test: logicality"][3] == "not shown"  # equal: the interval is 0
    verdicts = "\n".join(report.headline_verdicts(seeds))
    # logicality unchanged, so claim 1 fails; correct facts +0.5 and errors -0.4 on every seed
    assert (
        "**Claim 1** (KT beats SFT on all three aspects, gains ≥ 0.03 in two): **not shown**"
        in verdicts
    )
    assert "**Claim 2** (more correct facts and a lower error rate): **supported**" in verdicts
    assert "logicality **equivalent**" in verdicts
