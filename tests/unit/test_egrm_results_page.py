"""The E-GRM results page renders from results built on the simulated policy (no model)."""

from components.grm_scorer.evaluate_step import route_metrics
from experiments.egrm.report import targets, write_report
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
    verdicts = {claim[:3]: holds for claim, _, holds in targets(results)}
    assert verdicts["V2a"] and not verdicts["V1a"]  # simulated: +10 pts; gating pays M probes
