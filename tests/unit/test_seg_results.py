"""The segmentation results page: sample spreads from per-run results, the paired verdict, and the
conversion of the published population spreads (means untouched)."""

import math

import pytest

from components.common.io import read_json
from experiments.report import mean_std
from experiments.seg import convert_spreads, report
from tests.conftest import REPO_ROOT


def fake_runs(test_dice):
    """One run per (rung, fold, seed) with a validation and a test case of the given Dice."""
    return [
        {
            "rung": rung,
            "fold": fold,
            "seed": seed,
            "seconds": 10.0,
            "rows": [
                {"split": "val", "dice": 0.5, "hd95": 3.0},
                {"split": "test", "dice": test_dice(rung, fold, seed), "hd95": 4.0},
            ],
        }
        for rung in ("plain", "full")
        for fold in "ABC"
        for seed in (0, 1, 2)
    ]


def test_cells_are_mean_and_sample_std_over_seeds_and_the_verdict_follows_the_pairs():
    runs = fake_runs(lambda rung, fold, seed: 0.4 + 0.1 * seed + (0.05 if rung == "full" else 0))
    summary = report.summarize(runs, "ABC", [0, 1, 2])
    cell = summary["held_out"]["dice"]["plain"]["A"]
    assert cell["n"] == 3 and cell["mean"] == pytest.approx(0.5)
    assert cell["std"] == pytest.approx(mean_std([0.4, 0.5, 0.6])[1]) == pytest.approx(0.1)
    assert summary["paired"]["all"]["wins"] == 9 and summary["paired"]["all"]["n"] == 9
    body = report.render(summary)
    assert "sample std (ddof = 1)" in body and "generalised better than" in body
    assert "| plain | 0.500 ± 0.100 | 0.500 ± 0.100 | 0.500 ± 0.100 | 0.500 ± 0.100 |" in body


def test_published_spreads_convert_to_sample_std_and_keep_the_means():
    published = read_json(REPO_ROOT / "docs/results/seg_published_cells.json")["summary"]
    converted = convert_spreads.converted(published)
    before, after = (
        published["held_out"]["dice"]["plain"]["A"],
        converted["held_out"]["dice"]["plain"]["A"],
    )
    assert after["mean"] == before["mean"] and after["std"] == pytest.approx(
        before["std"] * math.sqrt(1.5)
    )
    overall = converted["paired"]["all"]
    assert overall["std"] == pytest.approx(published["paired"]["all"]["std"] * math.sqrt(9 / 8))
    assert overall["wins"] == published["paired"]["all"]["wins"]
    page = (REPO_ROOT / "docs/results/seg.md").read_text(encoding="utf-8")
    assert report.render(converted) in page
