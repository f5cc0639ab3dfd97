"""Aggregation over seeds, the recovery matrix and the generated sections of docs/results."""

import pytest

from components.ilp_diagnosis import benchmark, report, results_doc


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
    truth = report.ground_truth_report(rows, planted)
    summary = report.summary(
        [{**r, "task": "t", "mode": "mcq"} for r in rows],
        {"tau_jsd": 0.1, "early_late_gap": 0.0, "c4_gate": False},
    )
    after = {x: {i: True for i in ids} for x in benchmark.INTERVENTIONS}
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
    assert recovery["mean"]["C3"]["X1"] is None  # nothing planted there
    by_label = benchmark.recovery(results, by="labels")
    assert by_label["mean"]["C1"]["X1"] == 1.0


def test_generated_section_replaces_only_its_markers(tmp_path):
    summary = benchmark.aggregate([fake_seed(0, {"a"}), fake_seed(1, {"b"})])
    assert summary["confusion"]["matrix"][0][:2] == [2, 2]
    doc = tmp_path / results_doc.DOC
    doc.write_text("intro\n<!-- benchmark:begin -->\nold\n<!-- benchmark:end -->\nhand-written\n")
    results_doc.write_benchmark_section(tmp_path, summary)
    text = doc.read_text()
    assert text.startswith("intro\n") and text.endswith("hand-written\n") and "old" not in text
    assert "Recovery matrix" in text and "| C1 (2, 2) |" in text
    for name in ("unlearned_by_group", "cause_breakdown", "confusion", "recovery"):
        assert (tmp_path / "img" / f"ilp_{name}.png").stat().st_size > 1000
    # a variant gets its own section and PNGs, the default section stays as it was
    results_doc.write_benchmark_section(tmp_path, summary, "proportional")
    assert doc.read_text().startswith(text.rstrip("\n"))
    assert "<!-- benchmark-proportional:begin -->" in doc.read_text()
    assert (tmp_path / "img" / "ilp_recovery_proportional.png").is_file()


def test_a_work_dir_serves_one_benchmark_config(tmp_path):
    benchmark.claim_work_dir(tmp_path, benchmark.BenchmarkConfig(seeds=(0,)))
    benchmark.claim_work_dir(tmp_path, benchmark.BenchmarkConfig(seeds=(1, 2)))  # seeds may vary
    with pytest.raises(SystemExit, match="differs in: arch, cpt_lines, cpt_steps, finetune"):
        benchmark.claim_work_dir(tmp_path, benchmark.smoke_config())
