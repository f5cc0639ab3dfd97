"""The segmentation results page: sample spreads from per-run results, the paired verdict read off
its interval, the speed table, and the page as the render of the committed per-run results."""

import pytest

from components.common.io import read_json
from experiments.report import mean_std
from experiments.seg import report
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


def test_the_page_is_the_render_of_the_committed_per_run_results():
    raw = read_json(REPO_ROOT / "docs/results/seg_runs.json")
    summary = report.summarize(raw["runs"], raw["settings"]["domains"], raw["settings"]["seeds"])
    assert summary["pairs"] == summary["expected_pairs"] == 9
    page = (REPO_ROOT / "docs/results/seg.md").read_text(encoding="utf-8")
    assert report.render(summary) in page


def test_verdict_reads_the_95_percent_interval_of_the_paired_differences():
    # mean -0.137, sample std 0.224 over n = 9: t(0.975, 8) = 2.3060 (table), half-width
    # 2.3060 * 0.224 / 3 = 0.1722: [-0.309, 0.035] contains 0, although full won 1 of 9
    unclear = report.verdict({"mean": -0.137, "std": 0.224, "n": 9, "wins": 1})
    assert "did not clearly differ from" in unclear and "-0.137 [-0.309, 0.035]" in unclear
    # std 0.1: half-width 2.3060 * 0.1 / 3 = 0.0769, [-0.277, -0.123] wholly below 0
    assert "generalised worse than" in report.verdict({"mean": -0.2, "std": 0.1, "n": 9, "wins": 4})


def test_speed_per_source_crop_is_against_plain_at_batch_two():
    # voxels/s: plain batch 1 100, plain batch 2 300, dual 240 (two views per crop):
    # per voxel 300 / 240 = 1.25; per crop vs batch two 2 * 300 / 240 = 2.50; vs batch one
    # 2 * 100 / 240 = 0.83; inference 400 / 380 = 1.05
    bench = {
        "threads": 1,
        "train_voxels_per_s": {"plain": 100.0, "plain_batch2": 300.0, "dual": 240.0},
        "infer_voxels_per_s": {"plain": 400.0, "dual": 380.0},
    }
    text = report.speed_table(bench)
    assert "**1.25×** per voxel" in text and "**2.50×** per crop" in text
    assert "0.83× per crop" in text and "**1.05×**" in text
