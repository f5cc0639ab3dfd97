"""The SmolLM2 lane's metric, statistics and page section on hand-made runs (no model)."""

import math

import pytest

from components.common.io import write_json
from experiments.epi import smollm2_lane as lane
from experiments.epi import smollm2_report as report

# t(0.975, 2) = 4.302653, t(0.95, 2) = 2.919986
T95, T90 = 4.302653, 2.919986


def run(method, seed, forgetting, acc=(0.5, 0.5)):
    return {
        "method": method,
        "seed": seed,
        "forgetting": forgetting,
        "still_known": 0.9,
        "acc.add": acc[0],
        "acc.reverse": acc[1],
        "seconds": 100.0,
    }


FULL = [run("full", 0, 0.10), run("full", 1, 0.20), run("full", 2, 0.30)]
EPI = [run("epi", 0, 0.05), run("epi", 1, 0.10), run("epi", 2, 0.15, acc=(0.5, 0.8))]
RANDOM = [run("random_mask", 0, 0.10), run("random_mask", 1, 0.20), run("random_mask", 2, 0.30)]


def test_forgetting_is_the_drop_of_mean_p_on_known_countries():
    before = {"A": 0.9, "B": 0.6, "C": 0.2}  # C unknown: not counted
    after = {"A": 0.7, "B": 0.4, "C": 0.9}
    out = lane.forgetting(before, after)
    assert out["mean_before"] == pytest.approx(0.75)
    assert out["mean_after"] == pytest.approx(0.55)
    assert out["forgetting"] == pytest.approx(0.20)
    assert out["still_known"] == pytest.approx(0.5)  # A stays >= 0.5, B drops below


def test_phenomenon_mean_std_and_t_interval():
    check = report.phenomenon(FULL)
    # mean 0.2, sample std 0.1, half-width 4.302653 * 0.1 / sqrt(3) = 0.248414
    assert check["mean"] == pytest.approx(0.2)
    assert check["std"] == pytest.approx(0.1)
    assert check["ci"] == pytest.approx([0.2 - 0.248414, 0.2 + 0.248414], abs=1e-6)
    assert check["verdict"] == "no forgetting shown"  # the interval contains 0
    shifted = [run("full", s, f) for s, f in enumerate((0.50, 0.51, 0.52))]
    assert report.phenomenon(shifted)["verdict"] == "forgetting shown"


def test_claims_are_paired_by_seed():
    results = {"full": FULL, "epi": list(reversed(EPI)), "random_mask": RANDOM}
    (_, better, better_verdict), (_, importance, _) = report.claims(results)
    # full − epi per seed: 0.05, 0.10, 0.15 -> mean 0.1, std 0.05
    half = T95 * 0.05 / math.sqrt(3)
    assert better.estimate == pytest.approx(0.1)
    assert (better.low, better.high) == pytest.approx((0.1 - half, 0.1 + half))
    assert better_verdict == "not shown"  # [-0.024, 0.224] contains 0
    assert importance.estimate == pytest.approx(0.1)


def test_equivalence_rows_use_the_registered_margins():
    results = {"full": FULL, "epi": EPI, "random_mask": RANDOM}
    (forget, f_int, f_verdict), (tasks, t_int, t_verdict) = report.equivalences(results, 0.02, 0.5)
    assert "±2 points" in forget and "±50 points" in tasks
    assert f_int.estimate == pytest.approx(-0.1)
    # epi − full: -0.05, -0.10, -0.15: the 90 % CI [-0.184, -0.016] is not inside ±0.02 and the
    # 95 % CI [-0.224, 0.024] contains 0
    assert f_verdict == "not shown"
    shifted = {**results, "epi": [run("epi", s, f - 0.2) for s, f in enumerate((0.1, 0.2, 0.3))]}
    assert report.equivalences(shifted, 0.02, 0.5)[0][2] == "different"
    # new tasks' average, epi − full: 0, 0, 0.15 -> mean 0.05, std 0.0866
    half = T90 * math.sqrt(0.0075) / math.sqrt(3)
    assert (t_int.low, t_int.high) == pytest.approx((0.05 - half, 0.05 + half), abs=1e-6)
    assert t_verdict == "equivalent"  # [-0.096, 0.196] inside ±0.5


def test_report_writes_the_section_and_figure(tmp_path):
    results = tmp_path / "epi_smollm2"
    write_json(results / "preregistration.json", lane.preregistration())
    header = {"seeds": [0, 1, 2], "steps": 60, "probed": 4, "known": ["A", "B"]}
    header["mean_before"] = 0.8
    write_json(results / "baseline.json", {**header, "runs": FULL})
    page = tmp_path / "epi.md"
    page.write_text("intro\n\n<!-- epi-smollm2:begin -->\nold\n<!-- epi-smollm2:end -->\ntail\n")
    assert report.write_report(results) == [page]  # no comparison yet: no figure
    text = page.read_text()
    assert text.startswith("intro\n") and text.endswith("tail\n") and "old" not in text
    assert "seed 0: 10.0, seed 1: 20.0, seed 2: 30.0" in text
    assert "20.0 ± 10.0" in text and "[-4.8, 44.8]" in text and "no forgetting shown" in text
    assert "Not run, as pre-registered: full SFT shows no forgetting" in text

    write_json(
        results / "compare.json",
        {**header, "results": {"full": FULL, "epi": EPI, "random_mask": RANDOM}},
    )
    page_path, png = report.write_report(results)
    text = page_path.read_text()
    assert png == tmp_path / "img" / report.IMAGE and png.stat().st_size > 0
    assert "| epi | 10.0 ± 5.0 | [-2.4, 22.4] | 90.0 ± 0.0 | 55.0 ± 8.7 | 100 ± 0 |" in text
    assert "10.0 [-2.4, 22.4] | **not shown**" in text  # full − epi: 0.05, 0.10, 0.15
    assert "img/epi_smollm2_forgetting.png" in text


def test_the_second_regime_trains_every_invented_countrys_capital():
    from experiments.epi.smollm2_lane import fictional_records
    from experiments.world_facts import FICTIONAL

    records = fictional_records()
    assert len(records) == len(FICTIONAL) == 36
    first = records[0]
    assert first["prompt"] == f"What is the capital of {first['meta']['country']}?"
    assert first["response"] == FICTIONAL[first["meta"]["country"]]
