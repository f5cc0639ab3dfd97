"""The E-GRM results page renders from results built on the simulated policy (no model)."""

from components.grm_scorer.evaluate_step import route_metrics
from experiments.egrm.report import smollm2_table, targets, write_report
from tests.unit.test_egrm_cost import ITEMS

TAUS = (0.4, 0.8, 1.0)
START, END = "<!-- results:begin -->", "<!-- results:end -->"


def fake_results():
    scorer = {
        "eval.best_of_k.scorer": 0.9,
        "eval.best_of_k.vote": 0.8,
        "eval.best_of_k.oracle": 0.95,
        "eval.pairwise_accuracy": 0.7,
        "eval.spearman": 0.5,
        "val.pairwise_accuracy.all_paths": 0.8,
    }
    seed = {
        "routes": route_metrics(ITEMS, 0.8, TAUS),
        "scorers": {
            "hybrid": scorer,
            "mse": {**scorer, "eval.pairwise_accuracy": 0.6},
            "hinge": scorer,
        },
        "policy": {"base.direct_accuracy": 0.5, "sft.cot_share": 0.4},
        "paths": {"policy_fully_correct": 0.7},
    }
    return {
        "seeds": {"0": seed, "1": seed},
        "settings": {"evaluate": {"tau_sweep": list(TAUS)}, "scorer": {"encoder": "char"}},
    }


def test_report_renders_and_keeps_text_outside_the_markers(tmp_path):
    results = fake_results()
    path = write_report(results, tmp_path)
    text = path.read_text()
    assert START in text and END in text and "E-GRM (gating + scorer)" in text
    assert "sample std (ddof = 1)" in text  # the page says which spread it prints
    assert (tmp_path / "img" / "egrm_frontier.png").stat().st_size > 1000
    path.write_text("# Title\n\nmy notes\n\n" + text[text.index(START) :] + "\nafter\n")
    write_report(results, tmp_path)
    again = path.read_text()
    assert again.startswith("# Title\n\nmy notes") and again.rstrip().endswith("after")
    verdicts = {claim[:3]: verdict for claim, _, verdict in targets(results)}
    # identical seeds: a zero-width CI. Simulated: +10 pts; gating pays the M probes (ratio > 0.6)
    assert verdicts["V2a"] == "supported" and verdicts["V1a"] == "contradicted"


def test_auroc_verdict_reads_the_ci_not_the_mean():
    results = fake_results()
    results["seeds"] = {
        str(i): {**results["seeds"]["0"], "routes": {**results["seeds"]["0"]["routes"]}}
        for i in range(3)
    }
    for seed, value in zip(results["seeds"].values(), (0.70, 0.75, 0.80), strict=True):
        seed["routes"]["auroc.consensus_vs_mode"] = value
    claim, measured, verdict = targets(results)[-1]
    # mean 0.75, sample std 0.05, t(0.975, 2) = 4.303: half width 4.303 * 0.05 / sqrt(3) = 0.124
    assert claim.startswith("AUROC") and measured == "0.750 [0.626, 0.874]"
    assert verdict == "not shown"  # the mean meets 0.75, the CI does not clear it


def test_smollm2_table_carries_its_intervals():
    results = fake_results()
    results["smollm2"] = {
        "questions": 30,
        "terms": [2, 4],
        "m": 5,
        "tau": 0.8,
        "trigger_rate": 25 / 30,
        "auroc.consensus_vs_mode": 0.6392,
        "auroc.consensus_vs_greedy": 0.6392,
        "greedy_accuracy": 8 / 30,
        "mode_accuracy": 8 / 30,
        "accuracy_when_routed_direct": 1 / 5,
        "tokens_per_item": 60.8,
    }
    text = "\n".join(smollm2_table(results))
    # Hanley-McNeil, A = 0.6392, 8 right, 22 wrong: Q1 = A/(2-A) = 0.46973, Q2 = 2A^2/(1+A) =
    # 0.49851; SE^2 = (0.23062 + 7 * 0.06115 + 21 * 0.08993) / 176 = 0.014473, SE = 0.1203;
    # 0.6392 -+ 1.96 * 0.1203 = [0.403, 0.875]
    assert "0.639 [0.403, 0.875]" in text
    assert "better than chance (AUROC > 0.5): not shown" in text


def test_live_section_is_written_from_the_bench_results(tmp_path):
    route = {
        "accuracy": [0.9, 0.85, 0.94],
        "tokens_per_question": 30.0,
        "token_ratio_vs_cot_vote": 0.25,
        "wall_ms_per_question": [4.0, 3.5, 4.5],
        "wall_ratio_vs_cot_vote": [0.3, 0.28, 0.32],
        "trigger_rate": 0.1,
    }
    setup = {
        "about": "make repro's",
        "policy": "models/grm_policy",
        "scorer": "models/grm_scorer",
        "seed": 0,
        "questions": 150,
        "reps": 5,
        "tau": 0.8,
        "m": 5,
        "k": 4,
        "machine": "x86_64",
        "target_ratio": 0.6,
        "accuracy_margin": 1.0,
        "summary": {
            "egrm": {
                **route,
                "tokens_target_met": True,
                "wall_verdict": "supported",
                "accuracy_gap_vs_cot_vote": [2.0, -1.5, 5.5],
                "accuracy_verdict": "not shown",
            },
            "cot_vote": route,
            "always_direct": route,
        },
    }
    text = write_report(fake_results(), tmp_path, {"setups": {"repro": setup}}).read_text()
    assert "<!-- live:begin -->" in text and "90.0 [85.0, 94.0]" in text
    assert "**Setup `repro`**: make repro's." in text
    assert "wall-time ratio 0.300 [0.280, 0.320]: supported" in text
    assert "2.0 [-1.5, 5.5] pts (paired by question, t CI): not shown" in text
