"""Aggregation over seeds, the recovery matrix and the generated sections of docs/results."""

import pytest

from components.common.io import write_json
from components.ilp_diagnosis import report as step_report
from experiments.ilp import benchmark, report


def fake_seed(seed, fixed_by_x1):
    ids = ["a", "b", "c", "d"]
    planted = {"a": "C1", "b": "C1", "c": "C2", "d": "control"}
    labels = {"a": "C1", "b": "C2", "c": "C2", "d": None}
    rows = [
        {
            "id": i,
            "unlearned": i != "d",
            "analysed": i != "d",
            "label": labels[i] or "",
            "labels": [],
        }
        for i in ids
    ]
    truth = step_report.ground_truth_report(rows, planted)
    summary = step_report.summary(
        [{**r, "task": "t", "mode": "mcq"} for r in rows],
        {"tau_jsd": 0.1, "early_late_gap": 0.0, "c4_gate": False},
    )
    after = {x: {i: True for i in ids} for x in report.INTERVENTIONS}
    after["X1"] = {i: i not in fixed_by_x1 for i in ids}
    return {
        "seed": seed,
        "summary": summary,
        "truth": truth,
        "labels": labels,
        "planted": planted,
        "unlearned": {r["id"]: r["unlearned"] for r in rows},
        "after": after,
    }


def test_recovery_is_the_fraction_of_unlearned_records_learned_after_each_intervention():
    results = [fake_seed(0, {"a", "b"}), fake_seed(1, {"a"})]
    recovery = benchmark.recovery(results)
    assert recovery["mean"]["C1"]["X1"] == 0.75 and recovery["mean"]["C1"]["X2"] == 0.0
    assert recovery["unlearned_records"]["C1"] == [2, 2]
    assert recovery["std"]["C1"]["X1"] == pytest.approx(0.5**1.5)  # sample std of 1.0 and 0.5
    assert recovery["std"]["C3"]["X1"] is None
    assert recovery["mean"]["C3"]["X1"] is None  # nothing planted there
    by_label = benchmark.recovery(results, by="labels")
    assert by_label["mean"]["C1"]["X1"] == 1.0


def test_generated_section_replaces_only_its_markers(tmp_path):
    summary = benchmark.aggregate([fake_seed(0, {"a"}), fake_seed(1, {"b"})])
    assert summary["confusion"]["matrix"][0][:2] == [2, 2]
    doc = tmp_path / report.DOC
    doc.write_text("intro\n<!-- benchmark:begin -->\nold\n<!-- benchmark:end -->\nhand-written\n")
    report.write_benchmark_section(tmp_path, summary)
    text = doc.read_text()
    assert text.startswith("intro\n") and text.endswith("hand-written\n") and "old" not in text
    assert "Recovery matrix" in text and "| C1 (2, 2) |" in text
    assert "sample std (ddof = 1)" in text
    for name in ("unlearned_by_group", "cause_breakdown", "confusion", "recovery"):
        assert (tmp_path / "img" / f"ilp_{name}.png").stat().st_size > 1000
    # a variant gets its own section and PNGs, the default section stays as it was
    report.write_benchmark_section(tmp_path, summary, "proportional")
    assert doc.read_text().startswith(text.rstrip("\n"))
    assert "<!-- benchmark-proportional:begin -->" in doc.read_text()
    assert (tmp_path / "img" / "ilp_recovery_proportional.png").is_file()


def test_a_work_dir_serves_one_benchmark_config(tmp_path):
    benchmark.claim_work_dir(tmp_path, benchmark.BenchmarkConfig(seeds=(0,)))
    benchmark.claim_work_dir(tmp_path, benchmark.BenchmarkConfig(seeds=(1, 2)))  # seeds may vary
    with pytest.raises(SystemExit, match="differs in: arch, cpt_lines, cpt_steps, finetune"):
        benchmark.claim_work_dir(tmp_path, benchmark.smoke_config())


def test_the_page_is_rewritten_from_the_results_json_in_intervention_order(tmp_path):
    summary = benchmark.aggregate([fake_seed(0, {"a"}), fake_seed(1, {"b"})])
    write_json(tmp_path / "ilp_benchmark.json", {"config": {}, "aggregate": summary})
    assert report.main(["--out", str(tmp_path)]) == 0
    text = (tmp_path / report.DOC).read_text()
    assert "| planted cause (n) | " + " | ".join(report.INTERVENTIONS) + " |" in text
    assert "Overall unlearned rate after each run: X1 " in text


def test_recovery_keeps_per_seed_counts_and_the_page_pools_them_over_records(tmp_path):
    # C1: records a, b unlearned in both seeds; X1 fixes a and b in seed 0, only a in seed 1
    summary = benchmark.aggregate([fake_seed(0, {"a", "b"}), fake_seed(1, {"a"})])
    assert summary["recovery"]["recovered_records"]["C1"]["X1"] == [2, 1]
    # pooled 3 of 4 = 0.75; Wilson (z = 1.96): centre (0.75 + 1.96²/8) / (1 + 1.96²/4) = 0.62753,
    # half 1.96 · sqrt(0.75 · 0.25 / 4 + 1.96² / 64) / 1.9604 = 0.32689: [0.30, 0.95]
    assert report.pooled_cell(summary["recovery"], "C1", "X1") == "0.75 [0.30, 0.95] (3/4)"
    report.write_benchmark_section(tmp_path, summary)
    assert "| C1 (2, 2) | 0.75 [0.30, 0.95] (3/4) |" in (tmp_path / report.DOC).read_text()


def test_pooled_count_is_reconstructed_from_stored_means_only_where_unique():
    # seeds with 1 and 10 unlearned records: 1/1 and 7/10 give mean 0.85, sample std
    # |1 - 0.7| / sqrt(2) = 0.212132; no other integer pair fits, so 8 of 11 pooled
    assert report.reconstructed_totals(0.85, 0.3 / 2**0.5, [0, 1, 10]) == [8]
    # 1/1 with 0/10, or 0/1 with 10/10: both mean 0.5, std 0.707107, totals 1 or 10
    assert report.reconstructed_totals(0.5, 0.5 * 2**0.5, [1, 10]) == [1, 10]
    stored = {"mean": {"C4": {"X3r": 0.5}}, "std": {"C4": {"X3r": 0.5 * 2**0.5}}}
    stored["unlearned_records"] = {"C4": [0, 1, 10]}
    # 1/11 = 0.09 (Wilson low 0.016) to 10/11 = 0.91 (Wilson high 0.984)
    assert report.pooled_cell(stored, "C4", "X3r") == "0.09–0.91 [0.02, 0.98] (1–10/11)"


def test_macro_f1_verdict_reads_the_interval_over_seeds():
    # 0.69, 0.48, 0.52: mean 0.563, s = 0.1108, half 4.3027 · 0.1108 / sqrt(3) = 0.2753:
    # [0.288, 0.839] reaches both targets: neither shown nor excluded
    stored = {"mean": 0.5633, "std": 0.1108}
    assert report.macro_f1_verdicts(stored, 3) == "≥ 0.8: **not shown**; ≥ 0.6: **not shown**"
    # 0.43 ± 0.08: [0.231, 0.629], wholly below 0.8
    assert report.macro_f1_verdicts({"mean": 0.43, "std": 0.08}, 3).startswith(
        "≥ 0.8: **contradicted**"
    )


def test_smollm2_sections_from_the_results_jsons(tmp_path):
    """Two held-out seeds whose macro-F1 is 2/3 each (C1: P 1, R 1/2; C2: P 1/2, R 1): the
    interval is the point 0.67, below the 0.7 target; the plateau table averages the seeds'
    last-step losses (1 and 3: 2.00 ± 1.41)."""
    from experiments.ilp import smollm2_benchmark, smollm2_report

    seeds = [fake_seed(0, {"a"}), fake_seed(1, {"a"})]
    for k, seed in enumerate(seeds):
        seed["loss_by_group"] = {"C1": {"0": 5.0, "8": 1.0 + 2 * k}, "C2": {"0": 4.0, "8": 0.5}}
        seed["exposure"] = {"sft": {"C1": 13.0, "C2": 13.0, "control": 13.0}}
        seed["rows"] = [
            {"id": "a", "analysed": True, "signals": {"base_confidence": 0.9 - k / 10}},
            {"id": "c", "analysed": True, "signals": {"base_confidence": 0.7}},
            {"id": "d", "analysed": False},
        ]
        seed["rows"][0]["signals"]["belief_against_label"] = 0.2
        seed["rows"][1]["signals"]["belief_against_label"] = 0.99
    out = tmp_path / "ilp_smollm2"
    finetune = {"lora": {"r": 8}, "max_steps": 96, "batch_size": 8, "schedule": "sequential"}
    finetune |= {"stage_steps": "proportional", "learning_rate": 0.002}
    result = {
        "config": {"finetune": finetune},
        "knowledge": {"France": 0.9, "Peru": 0.2},
        "aggregate": smollm2_benchmark.world_summary(seeds),
        "seeds": seeds,
    }
    write_json(out / "heldout.json", result)
    # the preregistered second look: two more seeds, pooled with the first two
    more = [{**fake_seed(s, set()), "exposure": seeds[0]["exposure"]} for s in (3, 4)]
    more_result = {**result, "aggregate": smollm2_benchmark.world_summary(more), "seeds": more}
    write_json(out / "heldout_more_seeds.json", more_result)
    smollm2_report.write_sections(out)
    text = (tmp_path / report.DOC).read_text()
    assert "Seeds 3-5 alone: macro-F1 0.67 ± 0.00" in text
    assert "Seeds: [0, 1, 3, 4]" in text
    assert "Held-out macro-F1 0.67 ± 0.00 (95 % CI 0.67 [0.67, 0.67]); target ≥ 0.7: " in text
    assert "**contradicted**" in text
    assert "| C1 | 5.00 ± 0.00 | 2.00 ± 1.41 |" in text
    assert "| sft | 13.0 | 13.0 | 13.0 |" in text
    # the signal ranges pool the seeds' analysed records: a (C1) at 0.9 and 0.8, c (C2) twice
    assert "| C1 | 2 | 0.80–0.90 | 0.20–0.20 |" in text
    assert "| C2 | 2 | 0.70–0.70 | 0.99–0.99 |" in text
    assert "true capital of 1 of 2 countries" in text
    assert (tmp_path / "img/ilp_smollm2_heldout_loss.png").is_file()
