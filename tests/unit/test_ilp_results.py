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
