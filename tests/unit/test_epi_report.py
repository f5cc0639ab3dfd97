"""The EPI results page: the claim rule, and a page written from raw results."""

import random

from experiments.epi.report import verdict, write_report
from experiments.epi.run import METHODS


def fake_run(rng, base):
    run = {f"acc.{t}": min(1.0, base + rng.random() * 0.02) for t in ("add", "recall")}
    run |= {
        "acc_mean": sum(run.values()) / 2,
        "forgetting_mean": 0.1,
        "forgetting.recall": 0.2,
        "bwt": -0.1,
        "conflict_mean": 0.4,
        "drift.jaccard_consecutive_mean": 0.8,
        "drift.overlap_first_final": 0.3,
        "drift.jaccard_random": 0.0256,
    }
    return run


def test_verdict_rule():
    a = [{"x": 0.9}, {"x": 0.8}]
    b = [{"x": 0.5}, {"x": 0.6}]
    assert verdict(a, b, "x")[0] == "supported"
    assert verdict(b, a, "x")[0] == "contradicted"
    assert verdict(a, a, "x")[0].startswith("not shown")


def raw_results() -> dict:
    rng = random.Random(0)
    mixed = {m: [fake_run(rng, 0.5 + 0.05 * (m == "epi")) for _ in range(3)] for m in METHODS}
    mixed |= {f"single:{t}": [fake_run(rng, 0.7) for _ in range(3)] for t in ("add", "recall")}
    sequential = {m: [fake_run(rng, 0.4) for _ in range(3)] for m in METHODS if m != "multistage"}
    return {"seeds": [0, 1, 2], "steps": 10, "results": {"mixed": mixed, "sequential": sequential}}


def test_report_is_written_from_raw_results(tmp_path):
    (tmp_path / "epi.md").write_text(
        "# hand-written title\n\n<!-- results:begin -->\nold\n<!-- results:end -->\n\ntail\n"
    )
    path = write_report(tmp_path, raw_results())
    text = path.read_text()
    assert text.startswith("# hand-written title") and text.endswith("tail\n")
    assert "\nold\n" not in text and "sample std (ddof = 1)" in text
    assert "| epi |" in text and "Interference" in text and "BWT" in text
    assert "EPI beats full SFT on average accuracy" in text and "**supported**" in text
    assert (tmp_path / "img" / "epi_mixed_accuracy.png").stat().st_size > 1000
