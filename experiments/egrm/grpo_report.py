"""The `grpo` section of docs/results/egrm.md from egrm_grpo_results.json (grpo_compare.py):
per-arm means ± sample std over seeds, the benchmark check (does GRPO move the policy at all) and
the method claim (pairwise-reward GRPO above vanilla GRPO), each with its 95 % t interval over
seeds and a verdict read off the whole interval."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from experiments.report import pm, replace_section, table
from experiments.stats import equivalence_verdict, paired_difference_ci, threshold_verdict

ARM_NAMES = {
    "sft": "SFT only",
    "pairwise": "+ pairwise GRPO (E-GRM stage 2)",
    "vanilla": "+ vanilla GRPO (correctness only)",
}
# (results key, column title, scale)
COLUMNS = [
    ("cot_path_accuracy", "CoT path acc. %", 100),
    ("always_direct.accuracy", "direct acc. %", 100),
    ("egrm.accuracy", "E-GRM acc. %", 100),
    ("egrm.tokens_per_item", "E-GRM tokens", 1),
    ("egrm.trigger_rate", "CoT rate %", 100),
    ("grpo.correct.first", "GRPO samples correct, first log %", 100),
    ("grpo.correct.last", "last log %", 100),
]
# stated before the study was run: a gap inside ±2 points of accuracy counts as no difference
MARGIN = 0.02


def values(results: dict[str, Any], arm: str, key: str) -> list[float]:
    out = []
    for seed in results["seeds"].values():
        metrics = seed["arms"][arm]
        flat = {**metrics, **metrics.get("grpo", {})}  # the grm_grpo step's grpo.* metrics
        out.append(float(flat.get(key, float("nan"))))
    return out


def arms_table(results: dict[str, Any]) -> str:
    rows = []
    for arm, name in ARM_NAMES.items():
        cells = [
            pm(values(results, arm, key), 1 if scale == 100 else 2, scale)
            for key, _, scale in COLUMNS
        ]
        rows.append([name, *cells])
    return table(["arm", *(title for _, title, _ in COLUMNS)], rows)


def difference_rows(results: dict[str, Any], a: str, b: str) -> list[list[str]]:
    rows = []
    for key, title, scale in COLUMNS[:3]:
        diffs = [
            x - y for x, y in zip(values(results, a, key), values(results, b, key), strict=True)
        ]
        interval = paired_difference_ci(values(results, a, key), values(results, b, key))
        rows.append(
            [
                f"{ARM_NAMES[a]} − {ARM_NAMES[b]}: {title}",
                interval.format(1, scale),
                threshold_verdict(interval, 0.0),
                equivalence_verdict(diffs, MARGIN),
            ]
        )
    return rows


def grpo_section(results: dict[str, Any]) -> str:
    seeds = ", ".join(results["seeds"])
    # grm.grpo as run; `reward` is each arm's own
    settings = ", ".join(
        f"{k} {v}" for k, v in sorted(results["settings"].items()) if k != "reward"
    )
    header = ["paired difference (points)", "mean [95 % CI]", "> 0", f"TOST ±{MARGIN * 100:g}"]
    return "\n".join(
        [
            f"Seeds {seeds}; grm.grpo: {settings}. Mean ± sample std (ddof = 1) over seeds.",
            "",
            arms_table(results),
            "",
            "**Benchmark check: does GRPO move the policy?** (each GRPO arm − SFT only)",
            "",
            table(
                header,
                difference_rows(results, "pairwise", "sft")
                + difference_rows(results, "vanilla", "sft"),
            ),
            "",
            "**Method claim: pairwise-reward GRPO above vanilla GRPO** (pairwise − vanilla)",
            "",
            table(header, difference_rows(results, "pairwise", "vanilla")),
        ]
    )


def write_grpo_report(results: dict[str, Any], page: Path, section: str = "grpo") -> Path:
    replace_section(page, section, grpo_section(results))
    return page
