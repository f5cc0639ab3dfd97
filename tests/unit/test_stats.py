"""The intervals and verdicts of experiments/stats.py, against values worked out by hand."""

import math

import pytest

from experiments.stats import (
    Interval,
    auroc_ci,
    equivalence_verdict,
    mean_ci,
    paired_difference_ci,
    summary_ci,
    threshold_verdict,
    wilson_ci,
)


def test_mean_ci_is_the_t_interval_with_the_sample_std():
    # 1, 2, 3, 6: mean 3, s = sqrt(14/3) = 2.16025, t(0.975, 3) = 3.18245 (table), n = 4
    half = 3.18245 * 2.16025 / 2
    interval = mean_ci([1.0, 2.0, 3.0, 6.0])
    assert interval.estimate == 3.0
    assert interval.low == pytest.approx(3 - half, abs=1e-4)
    assert interval.high == pytest.approx(3 + half, abs=1e-4)


def test_summary_ci_is_the_t_interval_of_a_stored_mean_and_std():
    # mean 0.0907, s = 0.0395, n = 3: t(0.975, 2) = 4.30265 (table), half = 4.30265 * 0.0395 /
    # sqrt(3) = 0.098123
    interval = summary_ci(0.0907, 0.0395, 3)
    assert (interval.low, interval.high) == pytest.approx((-0.007423, 0.188823), abs=1e-5)
    assert math.isnan(summary_ci(0.5, None, 1).low)


def test_one_seed_has_no_interval_and_no_verdict():
    interval = mean_ci([0.7, None])
    assert interval.estimate == 0.7 and math.isnan(interval.low)
    assert interval.format() == "0.70 [n/a]"
    assert threshold_verdict(interval, 0.5) == "not shown"


def test_paired_difference_uses_per_seed_differences():
    # differences 1, 1, 4: mean 2, s = sqrt((1 + 1 + 4) / 2) = sqrt(3), t(0.975, 2) = 4.30265
    half = 4.30265 * math.sqrt(3) / math.sqrt(3)
    interval = paired_difference_ci([3.0, 5.0, 9.0], [2.0, 4.0, 5.0])
    assert interval.estimate == 2.0
    assert interval.low == pytest.approx(2 - half, abs=1e-4)
    with pytest.raises(ValueError):
        paired_difference_ci([1.0], [1.0, 2.0])


def test_wilson_interval_of_8_of_11():
    # p = 8/11, z = 1.95996: centre 0.66845, half-width 0.23409 (worked out by hand)
    interval = wilson_ci(8, 11)
    assert interval.estimate == pytest.approx(8 / 11)
    assert interval.low == pytest.approx(0.43436, abs=1e-3)
    assert interval.high == pytest.approx(0.90254, abs=1e-3)


def test_hanley_mcneil_interval_of_auroc_075_on_15_and_15():
    # Q1 = 0.75 / 1.25 = 0.6, Q2 = 2 * 0.5625 / 1.75 = 0.642857
    # SE^2 = (0.1875 + 14 * 0.0375 + 14 * 0.080357) / 225 = 1.8375 / 225, SE = 0.090370
    interval = auroc_ci(0.75, 15, 15)
    assert interval.low == pytest.approx(0.75 - 1.95996 * 0.090370, abs=1e-4)
    assert interval.high == pytest.approx(0.75 + 1.95996 * 0.090370, abs=1e-4)


def test_auroc_interval_is_clipped_to_the_unit_range():
    assert auroc_ci(0.99, 3, 3).high == 1.0


@pytest.mark.parametrize(
    ("interval", "verdict"),
    [
        (Interval(0.8, 0.71, 0.89), "supported"),
        (Interval(0.752, 0.69, 0.81), "not shown"),
        (Interval(0.6, 0.55, 0.65), "contradicted"),
    ],
)
def test_threshold_verdict_reads_the_whole_interval(interval, verdict):
    assert threshold_verdict(interval, 0.7) == verdict


def test_threshold_verdict_for_an_upper_bound():
    assert threshold_verdict(Interval(1.02, 0.99, 1.04), 1.05, greater=False) == "supported"
    assert threshold_verdict(Interval(1.2, 1.1, 1.3), 1.05, greater=False) == "contradicted"


def test_equivalence_needs_the_90_percent_interval_inside_the_margin():
    # differences 0.01, -0.01, 0.0: mean 0, s = 0.01, t(0.95, 2) = 2.91999: half 0.01686
    assert equivalence_verdict([0.01, -0.01, 0.0], margin=0.02) == "equivalent"
    assert equivalence_verdict([0.01, -0.01, 0.0], margin=0.015) == "not shown"


def test_a_wide_interval_around_zero_is_not_equivalence():
    assert equivalence_verdict([0.3, -0.3, 0.05], margin=0.05) == "not shown"


def test_an_interval_excluding_zero_is_a_difference():
    assert equivalence_verdict([0.20, 0.22, 0.21], margin=0.05) == "different"


def test_interval_format_scales_every_number():
    # a share printed as percent points: 0.5 [0.25, 0.75] × 100 at one digit
    assert Interval(0.5, 0.25, 0.75).format(digits=1, scale=100) == "50.0 [25.0, 75.0]"
    assert Interval(0.5, math.nan, math.nan).format(digits=1, scale=100) == "50.0 [n/a]"
    assert Interval(math.nan, math.nan, math.nan).format() == "n/a"


def test_auroc_interval_without_one_class_keeps_the_estimate_and_has_no_bounds():
    for interval in (auroc_ci(0.7, 0, 5), auroc_ci(0.7, 5, 0)):
        assert interval.estimate == 0.7 and math.isnan(interval.low) and math.isnan(interval.high)
    assert all(
        math.isnan(x) for x in (auroc_ci(math.nan, 5, 5).estimate, auroc_ci(math.nan, 5, 5).high)
    )
    # one of each is enough: Q1 = Q2 = 1/3, SE² = 0.25 / 1, half-width 0.98 → clipped to [0, 1]
    assert auroc_ci(0.5, 1, 1) == Interval(0.5, 0.0, 1.0)


def test_paired_difference_ci_passes_its_level_on():
    # differences 1, 2, 3: mean 2, sd 1, SE 1/√3; t(0.75, df 2) = 0.5·√(2/0.75) = 0.816497
    interval = paired_difference_ci([2.0, 3.0, 4.0], [1.0, 1.0, 1.0], level=0.5)
    half = 0.816497 / math.sqrt(3)
    assert (interval.low, interval.high) == pytest.approx((2 - half, 2 + half), abs=1e-5)


def test_wilson_interval_of_one_trial_and_of_none():
    # 1/1, z² = 3.841459: centre (1 + z²/2) / (1 + z²) = 2.920729 / 4.841459 = 0.603275,
    # half z·√(z²/4) / (1 + z²) = 1.920729 / 4.841459 = 0.396725: [0.206549, 1.0]
    one = wilson_ci(1, 1)
    assert (one.estimate, one.low, one.high) == pytest.approx((1.0, 0.206549, 1.0), abs=1e-5)
    assert all(math.isnan(x) for x in (wilson_ci(0, 0).estimate, wilson_ci(0, 0).high))


def test_an_interval_touching_the_threshold_shows_nothing():
    # "≥ 0.75" needs the whole interval above 0.75: a bound equal to it is not enough either way
    assert threshold_verdict(Interval(0.8, 0.75, 0.9), 0.75) == "not shown"
    assert threshold_verdict(Interval(0.7, 0.6, 0.75), 0.75) == "not shown"


def test_no_items_and_one_difference_give_no_interval_and_no_equivalence():
    empty = wilson_ci(0, 0)
    assert math.isnan(empty.estimate) and math.isnan(empty.low) and math.isnan(empty.high)
    assert equivalence_verdict([0.001], margin=1.0) == "not shown"


def test_summary_ci_of_two_seeds_and_of_a_missing_std():
    # n = 2 is the smallest with an interval: t(0.975, 1) = 12.7062, half = 12.7062 * 1 / sqrt(2)
    # = 8.9846 around the mean 1
    two = summary_ci(1.0, 1.0, 2)
    assert two.low == pytest.approx(-7.9846, abs=1e-4)
    assert two.high == pytest.approx(9.9846, abs=1e-4)
    # a stored mean without its std (None) has no bounds, whatever n
    missing = summary_ci(1.0, None, 3)
    assert missing.estimate == 1.0 and math.isnan(missing.low) and math.isnan(missing.high)


def test_equivalence_verdict_reads_the_difference_at_its_own_alpha():
    # differences 1, 2, 3: mean 2, sample std 1, se 1 / sqrt(3) = 0.57735. alpha = 0.1:
    # TOST (80 %): 2 +- t(0.90, 2) 1.8856 * 0.57735 = [0.911, 3.089], not inside +-0.5;
    # two-sided 90 %: 2 +- t(0.95, 2) 2.9200 * 0.57735 = [0.314, 3.686], excludes 0 -> different
    # (at 95 %, 2 +- 4.3027 * 0.57735 = [-0.484, 4.484] would include 0)
    assert equivalence_verdict([1.0, 2.0, 3.0], margin=0.5, alpha=0.1) == "different"
    assert equivalence_verdict([1.0, 2.0, 3.0], margin=0.5) == "not shown"
