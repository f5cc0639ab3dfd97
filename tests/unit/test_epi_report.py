"""The EPI results page: the claim rule, and a page written from raw results."""

import random

import pytest

from experiments.epi.report import chance_overlap, drift_verdict, verdict, write_report
from experiments.epi.run import METHODS
from experiments.stats import Interval


def fake_run(rng, base):
    run = {f"acc.{t}": min(1.0, base + rng.random() * 0.02) for t in ("add", "recall")}
    run |= {
        "acc_mean": sum(run.values()) / 2,
        "forgetting_mean": 0.1,
        "forgetting.recall": 0.2,
        "bwt": -0.1,
        "conflict_mean": 0.4,
        "drift.jaccard_consecutive_mean": 0.8,
        "drift.overlap_first_final": 0.3,
        "drift.jaccard_random": 0.05 / 1.95,  # p / (2 - p) at p = 0.05
        "train_records": 100,
    }
    return run


def test_verdict_is_read_off_the_95_percent_interval_of_per_seed_differences():
    # per-seed differences a - b = 0.3, 0.2, 0.4: mean 0.3, sample std 0.1,
    # half-width t(0.975, 2) * 0.1 / sqrt(3) = 4.3027 * 0.057735 = 0.24841
    a = [{"x": 0.9}, {"x": 0.8}, {"x": 1.0}]
    b = [{"x": 0.6}, {"x": 0.6}, {"x": 0.6}]
    word, interval = verdict(a, b, "x")
    assert word == "supported"
    assert (interval.low, interval.high) == pytest.approx((0.05159, 0.54841), abs=1e-5)
    assert verdict(b, a, "x")[0] == "contradicted"
    # lower is better: a forgets more, so the claim "a forgets less" is contradicted
    assert verdict(a, b, "x", higher_is_better=False)[0] == "contradicted"
    # differences 0.3, -0.1, 0.4: mean 0.2, the interval spans 0
    c = [{"x": 0.9}, {"x": 0.5}, {"x": 1.0}]
    assert verdict(c, b, "x")[0] == "not shown"


def test_drift_reference_is_p_not_the_chance_jaccard():
    # stored chance Jaccard J = p / (2 - p) = 0.05 / 1.95; p = 2J / (1 + J) = 0.05
    assert chance_overlap([{"drift.jaccard_random": 0.05 / 1.95}]) == pytest.approx(0.05)
    p = 0.05  # drift needs the whole interval in (2p, 0.9) = (0.10, 0.9)
    assert drift_verdict(Interval(0.112, 0.1004, 0.124), p) == "supported"
    # the sequential row: 0.095 [0.078, 0.112] straddles 2p; above 2 * p/(2-p) = 0.051 it passed
    assert drift_verdict(Interval(0.095, 0.078, 0.112), p) == "not shown"
    assert drift_verdict(Interval(0.06, 0.055, 0.065), p) == "contradicted"
    assert drift_verdict(Interval(0.95, 0.92, 0.98), p) == "contradicted"


def raw_results() -> dict:
    rng = random.Random(0)
    mixed = {m: [fake_run(rng, 0.5 + 0.05 * (m == "epi")) for _ in range(3)] for m in METHODS}
    mixed |= {f"single:{t}": [fake_run(rng, 0.7) for _ in range(3)] for t in ("add", "recall")}
    sequential = {m: [fake_run(rng, 0.4) for _ in range(3)] for m in METHODS if m != "multistage"}
    return {"seeds": [0, 1, 2], "steps": 10, "results": {"mixed": mixed, "sequential": sequential}}


def test_report_is_written_from_raw_results(tmp_path):
    (tmp_path / "epi.md").write_text(
        "# hand-written title\n\n<!-- results:begin -->\nold\n<!-- results:end -->\n\ntail\n"
    )
    path = write_report(tmp_path, raw_results())
    text = path.read_text()
    assert text.startswith("# hand-written title") and text.endswith("tail\n")
    assert "\nold\n" not in text and "sample std (ddof = 1)" in text
    assert "| epi |" in text and "Interference" in text and "BWT" in text
    assert "EPI beats full SFT on average accuracy" in text and "**supported**" in text
    assert "schedule, not isolation" in text and "dominated by under-training" in text
    assert "random mask ≈ full SFT within ±5 points (TOST" in text
    assert (tmp_path / "img" / "epi_mixed_accuracy.png").stat().st_size > 1000


def test_only_variants_join_each_seeds_saved_runs_in_seed_order(tmp_path):
    from components.common.io import read_json, write_json
    from experiments.epi.run import add_to_saved_runs, merge_raw

    for seed in (0, 1):
        write_json(
            tmp_path / f"seeds-{seed}.json",
            {"seeds": [seed], "steps": 10, "results": {"mixed": {"cpi": [{"acc_mean": seed}]}}},
        )
    add_to_saved_runs(
        tmp_path, [0, 1], 10, {"mixed": {"cpi@p=1%": [{"acc_mean": 0.5}, {"acc_mean": 1.5}]}}
    )
    assert read_json(tmp_path / "seeds-1.json")["results"]["mixed"]["cpi@p=1%"] == [
        {"acc_mean": 1.5}
    ]
    merged = merge_raw(tmp_path)["results"]["mixed"]
    assert merged["cpi@p=1%"] == [{"acc_mean": 0.5}, {"acc_mean": 1.5}]
    assert merged["cpi"] == [{"acc_mean": 0}, {"acc_mean": 1}]
    with pytest.raises(ValueError, match="steps 10"):
        add_to_saved_runs(tmp_path, [0], 20, {"mixed": {}})
