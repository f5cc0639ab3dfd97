"""The GOVERN page's numbers from hand-made seeds: the phenomenon interval, the claims' verdicts
(the 1-point threshold, retention, the strongest baseline, the control's TOST)."""

from experiments.govern import report
from experiments.govern.benchmark import ARMS, REGIMES


def fake_seed(seed: int, aucs: dict[str, dict[str, float]]) -> dict:
    """`aucs`: regime -> name -> AUC (students, `ensemble_mean`, `ensemble_median`)."""
    regimes = {}
    for regime in REGIMES:
        values = aucs[regime]
        regimes[regime] = {
            "students": {arm: {"auc": values.get(arm, 0.7), "accuracy": 0.6} for arm in ARMS},
            "ensemble_mean": {"auc": values.get("ensemble_mean", 0.7), "accuracy": 0.6},
            "ensemble_median": {"auc": values.get("ensemble_median", 0.7), "accuracy": 0.6},
            "teachers": [{"auc": 0.7, "accuracy": 0.6}] * 2,
            "majority_share": [0.8, 0.9],
            "outvoted_when_wrong": [0.5, None],
        }
    return {"seed": seed, "regimes": regimes}


def seeds_with(per_seed: list[dict[str, dict[str, float]]]) -> list[dict]:
    return [fake_seed(s, aucs) for s, aucs in enumerate(per_seed)]


def test_phenomenon_is_the_oracle_minus_mean_kd_interval():
    # gaps 0.02, 0.03, 0.04: mean 0.03, sample std 0.01, t(0.975, 2) = 4.303 -> +-0.0248
    # gaps 0.01, 0.02, 0.03: mean 0.02 -> [-0.0048, 0.0448], not shown
    per_seed = [
        {r: {"oracle": 0.80 + g[r], "mean": 0.80} for r in REGIMES}
        for g in (
            {"heavy": 0.01, "regional": 0.02, "gaussian": 0.0},
            {"heavy": 0.02, "regional": 0.03, "gaussian": 0.0},
            {"heavy": 0.03, "regional": 0.04, "gaussian": 0.0},
        )
    ]
    seeds = seeds_with(per_seed)
    regional = report.phenomenon(seeds, "regional")
    assert round(regional["interval"].low, 4) == 0.0052
    assert round(regional["interval"].high, 4) == 0.0548
    assert regional["shown"]
    heavy = report.phenomenon(seeds, "heavy")
    assert round(heavy["interval"].low, 4) == -0.0048 and not heavy["shown"]
    text, shown = report.phenomenon_section({"seeds": seeds})
    assert shown == {"heavy": False, "regional": True, "gaussian": False}
    assert (
        "| regional | 0.8300 ± 0.0100 | 0.8000 ± 0.0000 | 0.0300 [0.0052, 0.0548] | shown |" in text
    )


def test_claims_use_the_thresholds_and_the_strongest_baseline():
    aucs = {
        "govern": 0.815,
        "mean": 0.80,
        "median": 0.81,
        "aekd": 0.79,
        "ensemble_mean": 0.80,
        "supervised_govern": 0.82,
        "supervised_mean_kd": 0.82,
    }
    # the seeds differ by a constant, so every paired difference is a point interval
    per_seed = [{r: {k: v + d for k, v in aucs.items()} for r in REGIMES} for d in (0, 0.01, 0.02)]
    rows = {r[0]: r for r in report.claim_rows(seeds_with(per_seed), {"regional": True})}
    # +0.015 on every seed: above 0 and above the 1-point threshold
    assert rows["1. GOVERN - mean-KD (regional)"][2] == "supported"
    assert rows["1. GOVERN - mean-KD (heavy)"][2] == "untestable (no phenomenon)"
    # the strongest label-free baseline is the median (0.81), beaten by 0.005 on every seed
    assert rows["3. GOVERN - median (regional, strongest)"][2] == "supported"
    # retention 0.815/0.80 > 0.99 on every seed (not a point: the ratios differ slightly)
    assert rows["2. GOVERN / mean ensemble (regional)"][2] == "supported"
    # supervised: equal on every seed, a point interval at 0: not shown
    assert rows["5. supervised GOVERN - BCE + mean-KD (regional)"][2] == "not shown"


def test_the_control_needs_tost_not_a_wide_interval():
    close = [{r: {"govern": 0.80 + d, "mean": 0.80} for r in REGIMES} for d in (0.001, 0.0, -0.001)]
    row = report.claim_rows(seeds_with(close), {})[-4]
    assert row[0].startswith("4.") and row[2] == "equivalent"
    wide = [{r: {"govern": 0.80 + d, "mean": 0.80} for r in REGIMES} for d in (0.02, -0.02, 0.0)]
    assert report.claim_rows(seeds_with(wide), {})[-4][2] == "not shown"
