"""The stage-2 section of the E-GRM page (experiments/egrm/grpo_report.py) from fake results."""

from experiments.egrm.grpo_report import write_grpo_report


def fake_results(egrm_pairwise, egrm_vanilla):
    def arm(egrm, grpo=True):
        metrics = {
            "cot_path_accuracy": 0.8,
            "always_direct.accuracy": 0.9,
            "egrm.accuracy": egrm,
            "egrm.tokens_per_item": 30.0,
            "egrm.trigger_rate": 0.1,
        }
        if grpo:
            metrics["grpo"] = {"grpo.correct.first": 0.5, "grpo.correct.last": 0.75}
        return metrics

    return {
        "settings": {"steps": 100},
        "seeds": {
            str(seed): {
                "arms": {"sft": arm(0.9, grpo=False), "pairwise": arm(p), "vanilla": arm(v)}
            }
            for seed, (p, v) in enumerate(zip(egrm_pairwise, egrm_vanilla, strict=True))
        },
    }


def test_section_prints_the_paired_ci_and_verdicts(tmp_path):
    page = tmp_path / "egrm.md"
    page.write_text("# E-GRM\n\nprose\n\n<!-- grpo:begin -->\n<!-- grpo:end -->\n\nafter\n")
    write_grpo_report(fake_results([0.91, 0.92, 0.93], [0.90, 0.90, 0.90]), page)
    text = page.read_text()
    assert text.startswith("# E-GRM\n\nprose") and text.rstrip().endswith("after")
    # pairwise - vanilla E-GRM accuracy: differences 1, 2, 3 points, mean 2, sample std 1;
    # t(0.975, 2) = 4.303: half width 4.303 * 1 / sqrt(3) = 2.48 -> [-0.5, 4.5], straddles 0.
    # TOST +-2: 90 % t(0.95, 2) = 2.920, half width 1.69 -> [0.3, 3.7], not inside +-2
    row = next(line for line in text.splitlines() if "− + vanilla" in line and "E-GRM acc" in line)
    assert "2.0 [-0.5, 4.5] | not shown | not shown" in row
    # a per-arm cell: mean +- sample std over seeds, in points (91, 92, 93: 92.0 +- 1.0)
    assert "92.0 ± 1.0" in text
    assert "| 50.0 ± 0.0 | 75.0 ± 0.0 |" in text  # the GRPO samples' correct share, first / last


def test_identical_arms_are_equivalent_only_by_tost(tmp_path):
    page = tmp_path / "egrm.md"
    write_grpo_report(fake_results([0.90, 0.91, 0.90], [0.90, 0.90, 0.91]), page)
    row = next(
        line for line in page.read_text().splitlines() if "− + vanilla" in line and "E-GRM" in line
    )
    # differences 0, +1, -1 points: mean 0, sd 1, 90 % CI +-1.69 inside +-2 -> equivalent
    assert row.endswith("| not shown | equivalent |")
