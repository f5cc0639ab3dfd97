"""The regime-choice rules and the regimes part of the EPI page (issue 17)."""

import pytest

from components.common.io import read_json, write_json
from experiments.epi.regime_report import (
    forgetting_choice,
    passed,
    transfer_choice,
    write_regime_report,
)
from experiments.epi.run import METHODS

PREREG = "docs/results/epi_regimes/preregistration.json"


def retain_raw(drops, before=0.9):
    runs = [
        {"acc.recall": before - d, "acc.add": 0.5, "acc.reverse": 0.6, "drop.recall": d}
        for d in drops
    ]
    for run in runs:
        run["acc_mean"] = (run["acc.recall"] + 1.1) / 3
    return {
        "regime": "retain",
        "seeds": [100, 101, 102],
        "steps": 10,
        "before": {"acc.recall": before},
        "results": {"full": runs},
    }


def conflict_raw(multi, single):
    def run(a, b):
        return {"acc.recall": a, "acc.recall_alt": b, "acc_mean": (a + b) / 2}

    return {
        "regime": "conflict",
        "seeds": [100, 101, 102],
        "steps": 10,
        "before": {},
        "results": {
            "full": [run(a, 0.5) for a in multi],
            "single:recall": [{"acc.recall": s, "steps": 5.0} for s in single],
            "single:recall_alt": [{"acc.recall_alt": 0.5, "steps": 5.0} for _ in single],
        },
    }


def test_forgetting_rule_needs_the_whole_interval_above_zero():
    # drops 0.9, 0.8, 1.0: mean 0.9, sample std 0.1, half-width 4.3027 * 0.1 / sqrt(3) = 0.24841
    interval, word = forgetting_choice(retain_raw([0.9, 0.8, 1.0]), "recall")
    assert (interval.low, interval.high) == pytest.approx((0.65159, 1.14841), abs=1e-5)
    assert word == "forgetting shown" and passed(retain_raw([0.9, 0.8, 1.0]))
    # drops 0.1, -0.1, 0.3: mean 0.1, std 0.2, half-width 0.49682: spans 0
    assert forgetting_choice(retain_raw([0.1, -0.1, 0.3]), "recall")[1] == "no forgetting shown"
    assert not passed(retain_raw([0.1, -0.1, 0.3]))


def test_negative_transfer_rule_is_paired_by_seed():
    # multi − single = −0.3, −0.2, −0.4: mean −0.3, interval [−0.54841, −0.05159]
    raw = conflict_raw([0.5, 0.6, 0.4], [0.8, 0.8, 0.8])
    interval, word = transfer_choice(raw, "recall")
    assert (interval.low, interval.high) == pytest.approx((-0.54841, -0.05159), abs=1e-5)
    assert word == "negative transfer"
    # recall_alt: differences 0, 0, 0 → a zero-width interval at 0, not shown
    assert transfer_choice(raw, "recall_alt")[1] == "not shown"
    assert passed(raw)
    assert transfer_choice(conflict_raw([0.9, 1.0, 0.95], [0.5, 0.6, 0.5]), "recall")[1] == (
        "positive transfer"
    )
    assert not passed(conflict_raw([0.9, 1.0, 0.95], [0.5, 0.6, 0.5]))


def test_page_has_the_choice_before_the_comparison(tmp_path):
    raw_dir = tmp_path / "epi_regimes"
    write_json(raw_dir / "preregistration.json", read_json(PREREG))
    write_json(raw_dir / "choice-retain.json", retain_raw([0.9, 0.8, 1.0]))
    compare = retain_raw([0.9, 0.8, 1.0])
    compare["seeds"] = [0, 1, 2]
    compare["results"] = {m: retain_raw([0.9, 0.8, 1.0])["results"]["full"] for m in METHODS}
    compare["results"]["epi"] = retain_raw([0.5, 0.4, 0.6])["results"]["full"]
    write_json(raw_dir / "compare-retain-seeds-0-1-2.json", compare)
    (tmp_path / "epi.md").write_text("hand-written\n", encoding="utf-8")
    page = write_regime_report(tmp_path).read_text(encoding="utf-8")
    assert page.startswith("hand-written")
    assert page.index("Regime choice") < page.index("Comparison on fresh seeds")
    assert "Chosen for the comparison: retain." in page
    # EPI forgets 0.4 less on every seed: the claim is supported with a zero-width interval
    assert "| retain | EPI forgets the base's recall less than full SFT | 40.0 [40.0, 40.0] |" in (
        page
    )
    assert (tmp_path / "img" / "epi_regime_retain.png").is_file()
