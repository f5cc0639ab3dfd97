"""docs/results/atm.md, every number computed from docs/results/atm/*.json:

python -m experiments.atm.benchmark report"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from components.common.io import read_json
from components.common.plots import grouped_bar_plot, line_plot
from experiments.atm.benchmark import ARMS, HEADLINE, ROUND_ARMS
from experiments.report import SPREAD_NOTE, mean_std, pm, table
from experiments.stats import equivalence_verdict, mean_ci, paired_difference_ci

PAGE = "atm.md"
MIN_CLEAN_EM = 0.3  # preregistered: a G_0 that reads
CLEAN_MARGIN = 0.02  # preregistered (spec acceptance 3): clean EM not worse than SFT - 2 points
GAINS = {"sft": 0.05, "static_aug": 0.02, "noise_aug": 0.0}  # acceptance 2's thresholds
SHOWN_CONDITIONS = (
    "clean",
    "noise_2",
    "heldout_1_top",
    "heldout_2_top",
    "heldout_2_random",
    "heldout_3_top",
    "corroborated_2_top",
    "attacker_top",
)
ROUND_KEYS = ("strength_before", "strength_after", "em_clean", "em_attacked")


def em(seed: dict[str, Any], arm: str, condition: str) -> float:
    return float(seed["metrics"][f"{arm}.{condition}.em"])


def phenomenon(result: dict[str, Any]) -> dict[str, Any]:
    """Per seed: G_0's clean test EM minus its EM under the held-out fabricator."""
    seeds = result["seeds"]
    clean = [em(s, "sft", "clean") for s in seeds]
    attacked = [em(s, "sft", HEADLINE) for s in seeds]
    gap = [c - a for c, a in zip(clean, attacked, strict=True)]
    interval = mean_ci(gap)
    reads = mean_std(clean)[0] >= MIN_CLEAN_EM
    return {
        "clean": clean,
        "attacked": attacked,
        "gap": gap,
        "interval": interval,
        "reads": reads,
        "shown": reads and interval.low > 0,
    }


def phenomenon_section(result: dict[str, Any]) -> str:
    p = phenomenon(result)
    seeds = [s["seed"] for s in result["seeds"]]
    rows = [
        (seed, f"{c:.3f}", f"{a:.3f}", f"{c - a:+.3f}")
        for seed, c, a in zip(seeds, p["clean"], p["attacked"], strict=True)
    ]
    if p["shown"]:
        verdict = "**Phenomenon shown**: two fabricated documents fool G_0."
    elif not p["reads"]:
        verdict = (
            f"**Phenomenon not shown**: G_0's clean EM is below {MIN_CLEAN_EM}, so it does not "
            "read its retrieved documents and a fabrication has nothing to mislead."
        )
    else:
        verdict = "**Phenomenon not shown**: the gap's interval is not wholly above 0."
    return "\n".join(
        [
            f"G_0 (the warm-up SFT generator) alone, on the comparison's seeds; the test lists "
            f"are MiniLM's top-5, with 2 held-out-template fabrications on top for "
            f"`{HEADLINE}`.",
            "",
            table(("seed", "EM clean", f"EM {HEADLINE}", "clean - attacked"), rows),
            "",
            f"Gap, mean and 95 % t interval over seeds: {p['interval'].format(3)}. {verdict}",
        ]
    )


def arm_table(seeds: Sequence[dict], arms: Sequence[str]) -> str:
    rows = [
        (arm, *(pm([em(s, arm, c) for s in seeds], 3) for c in SHOWN_CONDITIONS)) for arm in arms
    ]
    return table(("arm", *SHOWN_CONDITIONS), rows)


def claim_rows(seeds: Sequence[dict]) -> list[tuple[str, ...]]:
    rows = []
    for baseline, gain in GAINS.items():
        diff = paired_difference_ci(
            [em(s, "atm", HEADLINE) for s in seeds], [em(s, baseline, HEADLINE) for s in seeds]
        )
        met = diff.low > 0 and diff.estimate >= gain
        rows.append(
            (
                f"EM {HEADLINE}: ATM - {baseline}",
                diff.format(3),
                f">= +{gain:.2f}, interval above 0",
                "supported" if met else "not shown",
            )
        )
    clean = [em(s, "atm", "clean") - em(s, "sft", "clean") for s in seeds]
    interval = mean_ci(clean)
    tost = equivalence_verdict(clean, CLEAN_MARGIN)
    not_worse = interval.low > -CLEAN_MARGIN
    rows.append(
        (
            "EM clean: ATM - SFT",
            interval.format(3),
            f"not below -{CLEAN_MARGIN}",
            "supported" if not_worse or tost == "equivalent" else f"not shown (TOST: {tost})",
        )
    )
    return rows


def rounds_table(seeds: Sequence[dict]) -> tuple[str, dict[str, list[float]]]:
    """Per round arm and round: the four round metrics, mean ± std over seeds."""
    rows, means = [], {}
    for arm in ROUND_ARMS:
        histories = [s["rounds"][arm] for s in seeds if arm in s.get("rounds", {})]
        if not histories:
            continue
        for t in range(len(histories[0])):
            values = {k: [h[t][k] for h in histories] for k in ROUND_KEYS}
            stronger = paired_difference_ci(values["strength_after"], values["strength_before"])
            rows.append(
                (
                    arm,
                    t + 1,
                    *(pm(values[k], 3) for k in ROUND_KEYS),
                    stronger.format(3),
                )
            )
            for k in ("em_clean", "em_attacked"):
                means.setdefault(f"{arm} {k}", []).append(mean_std(values[k])[0])
    header = (
        "arm",
        "round",
        "strength before DPO",
        "strength after DPO",
        "dev EM clean",
        "dev EM attacked",
        "after - before",
    )
    return table(header, rows), means


def compare_section(result: dict[str, Any], img: Path) -> str:
    seeds = result["seeds"]
    arms = [a for a in ARMS if f"{a}.clean.em" in seeds[0]["metrics"]]
    plot = {c: {a: mean_std([em(s, a, c) for s in seeds]) for a in arms} for c in SHOWN_CONDITIONS}
    grouped_bar_plot(
        plot, img / "atm_em_by_condition.png", title="Test EM per arm", ylabel="exact match"
    )
    rounds, means = rounds_table(seeds)
    if means:
        line_plot(
            {k: (list(range(1, len(v) + 1)), v) for k, v in means.items()},
            img / "atm_rounds.png",
            title="Dev EM per round (mean over seeds)",
            xlabel="round",
            ylabel="exact match",
        )
    return "\n".join(
        [
            f"Seeds {[s['seed'] for s in seeds]}; {SPREAD_NOTE}; test EM per condition "
            "(`n` fabrications; `heldout`: the held-out template fabricator, `corroborated`: "
            "its documents agreeing on one wrong value, `attacker_top`: the trained ATM "
            "attacker's documents on top).",
            "",
            arm_table(seeds, arms),
            "",
            "![EM per arm and condition](img/atm_em_by_condition.png)",
            "",
            "### Claims (preregistered)",
            "",
            table(
                ("claim", "mean [95 % paired t interval]", "threshold", "verdict"),
                claim_rows(seeds),
            ),  # fmt: skip
            "",
            "### Per round",
            "",
            "Attack strength: G_t's mean gold-answer NLL on the attacker's fresh fabrications, "
            "before and after the round's DPO (the same frozen G_t). Dev EM: the round's "
            "generator on the probe questions, clean and with the round's attacker on top.",
            "",
            rounds,
            "",
            "![dev EM per round](img/atm_rounds.png)" if means else "",
        ]
    )


HEADER = """# ATM: results

Code: `experiments/atm/benchmark.py` (the steps of `components/atm` called in-process) and this
page's generator `experiments/atm/report.py`; the preregistration is
`docs/results/atm/preregistration.json`, committed before any arm ran.

The world: invented people with four facts each (occupation, birth city, employer, instrument),
a bio and a news document per person, near-duplicate names, popular people repeated in the
base's corpus; test questions are about people never trained on, so they are answerable only by
reading the retrieved documents.
"""


def write_report(out: Path) -> Path:
    img = out.parent / "img"
    parts = [HEADER]
    if (out / "phenomenon.json").is_file():
        parts += ["## 1. Does the benchmark contain the phenomenon?", ""]
        parts += [phenomenon_section(read_json(out / "phenomenon.json")), ""]
    if (out / "compare.json").is_file():
        parts += ["## 2. The comparison", ""]
        parts += [compare_section(read_json(out / "compare.json"), img), ""]
    page = out.parent / PAGE
    page.write_text("\n".join(parts), encoding="utf-8")
    return page
