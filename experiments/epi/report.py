"""Render the comparison's raw results (docs/results/epi_runs/*.json) into docs/results/epi.md:
tables of mean ± sample std over seeds, figures, and a verdict on each claim computed from the
numbers with a fixed rule (the 95 % interval of the per-seed paired difference, from
`experiments.stats`). The generated part sits between `<!-- results:begin -->` and
`<!-- results:end -->`; the text around it is hand-written and kept.

    python -m experiments.epi.run --report-only   # re-render from epi_runs/*.json"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from components.common.plots import grouped_bar_plot
from experiments.report import SPREAD_NOTE, mean_std, pm, replace_section, table
from experiments.stats import (
    Interval,
    equivalence_verdict,
    mean_ci,
    threshold_verdict,
)

Runs = list[dict[str, float]]
PAGE = "epi.md"
# TOST margin for "random mask ≈ full SFT", in average-accuracy points (fraction 0.05): fixed
# before the test was run and printed on the page above the result
EQUIVALENCE_MARGIN = 0.05
# "well above random": the final mask keeps at least twice the chance overlap with the first
DRIFT_FACTOR = 2.0
DRIFT_CEILING = 0.9

# (claim, method a, method b, metric, higher is better) on the mixed stream
MIXED_CLAIMS = (
    ("EPI beats full SFT on average accuracy", "epi", "full", "acc_mean", True),
    (
        "schedule, not isolation: EPI on the mixed stream beats CPI trained in stages "
        "(CPI at p = 5 %, not CPI-FT's 1 %)",
        "epi",
        "cpi",
        "acc_mean",
        True,
    ),
    (
        "isolation on the staged schedule: CPI beats staged full SFT (multistage)",
        "cpi",
        "multistage",
        "acc_mean",
        True,
    ),
    (
        "isolation on the staged schedule at CPI-FT's p = 1 %: CPI beats staged full SFT",
        "cpi@p=1%",
        "multistage",
        "acc_mean",
        True,
    ),
    ("CPI's core size: p = 1 % beats p = 5 % (both staged)", "cpi@p=1%", "cpi", "acc_mean", True),
    (
        "schedule alone: full SFT on the mixed stream beats staged full SFT (multistage)",
        "full",
        "multistage",
        "acc_mean",
        True,
    ),
    ("EPI ≥ EPI-static on worst-task accuracy", "epi", "epi_static", "worst", True),
    ("EPI forgets less than EPI-static", "epi", "epi_static", "forgetting_mean", False),
    ("EPI forgets less than full SFT", "epi", "full", "forgetting_mean", False),
    ("importance matters: EPI beats a random mask", "epi", "random_mask", "acc_mean", True),
    ("sign check: EPI beats inverse-EPI", "epi", "inverse_epi", "acc_mean", True),
)
# (claim, method a, method b): a forgets the first task (recall) less than b
SEQUENTIAL_CLAIMS = (
    ("EPI forgets the first task less than full SFT", "epi", "full"),
    ("static isolation (CPI) forgets the first task less than full SFT", "cpi", "full"),
    ("CPI at CPI-FT's p = 1 % forgets the first task less than full SFT", "cpi@p=1%", "full"),
    ("stage memory forgets the first task less than plain EPI", "epi+stage_memory", "epi"),
)


def values(runs: Runs, key: str) -> list[float]:
    """`key` of every run that has it; `worst` is the lowest per-task accuracy of each run."""
    if key == "worst":
        return [min(v for k, v in r.items() if k.startswith("acc.")) for r in runs]
    return [r[key] for r in runs if key in r]


def stat(runs: Runs, key: str) -> tuple[float, float] | None:
    """Mean and sample std of `key` over runs (std nan for a single run), None when unmeasured."""
    xs = values(runs, key)
    return mean_std(xs) if xs else None


def cell(runs: Runs, key: str, scale: float = 100.0, digits: int = 1) -> str:
    """`mean ± std` of `key`, by default as percentage points."""
    return pm(values(runs, key), digits, scale)


def differences(a: Runs, b: Runs, key: str, higher_is_better: bool = True) -> list[float]:
    """Per-seed a − b on `key` (signed so that positive favours a); the runs of every method are
    in the same seed order, and a seed shares data and base across methods."""
    sign = 1 if higher_is_better else -1
    return [sign * (x - y) for x, y in zip(values(a, key), values(b, key), strict=True)]


def verdict(a: Runs, b: Runs, key: str, higher_is_better: bool = True) -> tuple[str, Interval]:
    """Compare a against b on `key` by the 95 % t interval of the per-seed paired difference:
    'supported' when it lies wholly in a's favour, 'contradicted' when wholly against, else
    'not shown'."""
    if not values(a, key) or not values(b, key):
        return "not measured", Interval(math.nan, math.nan, math.nan)
    interval = mean_ci(differences(a, b, key, higher_is_better))
    return threshold_verdict(interval, 0.0), interval


def tasks_of(runs: dict[str, Runs]) -> list[str]:
    first = next(iter(runs.values()))[0]
    return sorted(k.removeprefix("acc.") for k in first if k.startswith("acc.") and "mean" not in k)


def method_table(runs: dict[str, Runs], tasks: list[str], extra: list[tuple[str, str, float]]):
    """One row per method: per-task accuracy, average, worst task and the `extra` metrics
    (column, key, scale)."""
    header = ["method", *tasks, "average", "worst task", *(name for name, _, _ in extra)]
    rows = [
        [
            label,
            *(cell(rs, f"acc.{t}") for t in tasks),
            cell(rs, "acc_mean"),
            cell(rs, "worst"),
            *(cell(rs, key, scale) for _, key, scale in extra),
        ]
        for label, rs in runs.items()
        if not label.startswith("single:")
    ]
    return table(header, rows)


def setup(raw: dict[str, Any]) -> list[str]:
    return [
        f"Tiny profile (a ~0.7M-parameter Llama pretrained on the synthetic world corpus), "
        f"{raw['steps']} optimizer steps per run, batch 32, AdamW lr 1e-3, seeds {raw['seeds']}. "
        "Accuracy is exact match in percent on 50 held-out prompts per task (recall is evaluated "
        f"on trained keys); every cell is the {SPREAD_NOTE}. EPI: p = 0.05, K = 25, β = 0.95, "
        "per-tensor mean normalisation, global top-p, final-delta protection (our defaults for "
        "the tiny model on CPU). `cpi` is CPI-FT/DPI-style static isolation (probe cores, Jaccard "
        "grouping, earlier cores frozen); `full`/`multistage` run the importance engine "
        "observe-only to measure drift. Forgetting = best earlier evaluation − final, in points.",
        "",
    ]


def accuracy_plot(runs: dict[str, Runs], tasks: list[str], out: Path) -> list[str]:
    per_task = {
        t: {
            m: stat(rs, f"acc.{t}")
            for m, rs in runs.items()
            if not m.startswith("single:") and stat(rs, f"acc.{t}")
        }
        for t in tasks
    }
    grouped_bar_plot(
        per_task,
        out / "img" / "epi_mixed_accuracy.png",
        title="Mixed run: accuracy per task (mean ± std)",
        ylabel="exact match",
    )
    return ["![per-task accuracy](img/epi_mixed_accuracy.png)", ""]


def single_task_steps(runs: dict[str, Runs], task: str, steps: int) -> int:
    """The steps `experiments.epi.run.single_task_runs` gave the task alone: its share of the
    mixed run's records times the mixed run's steps, at least 20."""
    share = runs[f"single:{task}"][0]["train_records"] / runs["full"][0]["train_records"]
    return max(int(steps * share), 20)


def interference(runs: dict[str, Runs], tasks: list[str], steps: int) -> list[str]:
    """Multi-task full SFT against single-task SFT on each task (paired by seed)."""
    if not any(k.startswith("single:") for k in runs):
        return []
    rows = []
    for t in tasks:
        single, multi = runs[f"single:{t}"], runs["full"]
        gap = mean_ci(differences(multi, single, f"acc.{t}"))
        rows.append(
            [
                t,
                single_task_steps(runs, t, steps),
                cell(single, f"acc.{t}"),
                cell(multi, f"acc.{t}"),
                gap.format(1, 100.0),
            ]
        )
    header = ["task", "single-task steps", "single-task", "multi-task (full)"]
    unlearned = [t for t in tasks if stat(runs[f"single:{t}"], f"acc.{t}")[0] == 0]
    return [
        "### Interference (multi-task full SFT − single-task SFT)",
        "",
        "Single-task runs get that task's share of the mixed run's steps (compute-matched in "
        f"samples of the task, not in passes to convergence), against {steps} steps for the "
        "multi-task run. **The column is dominated by under-training, not interference:** the "
        f"short single-task runs score 0 on {', '.join(unlearned) or 'no task'}, so a positive "
        "gap here says that more steps help, not that the tasks help each other.",
        "",
        table([*header, "interference (pts, 95 % CI)"], rows),
        "",
    ]


def mixed_claims(runs: dict[str, Runs]) -> list[list[str]]:
    claims = []
    for text, a, b, key, higher_is_better in MIXED_CLAIMS:
        if a in runs and b in runs:
            word, diff = verdict(runs[a], runs[b], key, higher_is_better)
            claims.append(["mixed", text, diff.format(1, 100.0), f"**{word}**"])
    gaps = differences(runs["random_mask"], runs["full"], "acc_mean")
    same = equivalence_verdict(gaps, EQUIVALENCE_MARGIN)
    claims.append(
        [
            "mixed",
            f"random mask ≈ full SFT within ±{EQUIVALENCE_MARGIN * 100:.0f} points "
            "(TOST; freezing alone does not help)",
            mean_ci(gaps, level=0.9).format(1, 100.0) + " (90 % CI)",
            f"**{'supported' if same == 'equivalent' else same}**",
        ]
    )
    return claims


def mixed_section(runs: dict[str, Runs], out: Path, steps: int) -> list[str]:
    tasks = tasks_of(runs)
    extra = [
        ("forgetting (pts)", "forgetting_mean", 100.0),
        ("gradient conflict", "conflict_mean", 1.0),
    ]
    return [
        "## Mixed multi-task, recall under-represented (~5 % of the stream)",
        "",
        method_table(runs, tasks, extra),
        "",
        *accuracy_plot(runs, tasks, out),
        *interference(runs, tasks, steps),
    ]


def sequential_claims(runs: dict[str, Runs]) -> list[list[str]]:
    claims = []
    for text, a, b in SEQUENTIAL_CLAIMS:
        if a in runs and b in runs:
            word, diff = verdict(runs[a], runs[b], "forgetting.recall", False)
            claims.append(["sequential", text, diff.format(1, 100.0), f"**{word}**"])
    return claims


def sequential_section(runs: dict[str, Runs]) -> list[str]:
    extra = [
        ("recall forgetting (pts)", "forgetting.recall", 100.0),
        ("BWT (pts)", "bwt", 100.0),
    ]
    return [
        "## Sequential recall → reverse → add (a third of the steps each)",
        "",
        "`multistage` is identical to `full` here and is not run twice.",
        "",
        method_table(runs, tasks_of(runs), extra),
        "",
    ]


def chance_overlap(runs: Runs) -> float:
    """p, the overlap of two independent random top-p masks (|A ∩ B| / |B|), recovered from the
    stored chance Jaccard J = p / (2 − p) as p = 2J / (1 + J)."""
    jaccard = values(runs, "drift.jaccard_random")[0]
    return 2 * jaccard / (1 + jaccard)


def drift_verdict(overlap: Interval, p: float) -> str:
    """Drift is *supported* when the 95 % CI of the overlap lies wholly between DRIFT_FACTOR × p
    and DRIFT_CEILING, *contradicted* when it lies wholly outside that band, else not shown."""
    above = threshold_verdict(overlap, DRIFT_FACTOR * p)
    below = threshold_verdict(overlap, DRIFT_CEILING, greater=False)
    if above == below == "supported":
        return "supported"
    if "contradicted" in (above, below):
        return "contradicted"
    return "not shown"


def drift(results: dict[str, dict[str, Runs]]) -> tuple[list[list[str]], list[list[str]]]:
    """Mask-overlap rows for `full`, `epi` and `random_mask` (the measured chance level) of each
    scenario, and the drift claim, judged on `full` (observe-only)."""
    rows, claims = [], []
    for scenario, runs in results.items():
        for label in ("full", "epi", "random_mask"):
            if label not in runs or not stat(runs[label], "drift.jaccard_consecutive_mean"):
                continue
            rs = runs[label]
            overlap = mean_ci(values(rs, "drift.overlap_first_final"))
            rows.append(
                [
                    scenario,
                    label,
                    cell(rs, "drift.jaccard_consecutive_mean", 1, 3),
                    cell(rs, "drift.overlap_first_final", 1, 3),
                    overlap.format(3),
                    f"{chance_overlap(rs):.3f}",
                ]
            )
            if label == "full":
                p = chance_overlap(rs)
                claims.append(
                    [
                        scenario,
                        "importance drifts during plain SFT (overlap of the final mask with the "
                        f"first below {DRIFT_CEILING} and above {DRIFT_FACTOR:.0f} × p)",
                        f"{overlap.format(3)} vs {DRIFT_FACTOR * p:.3f}",
                        f"**{drift_verdict(overlap, p)}**",
                    ]
                )
    return rows, claims


def drift_section(rows: list[list[str]], out: Path) -> list[str]:
    header = ["scenario", "method", "Jaccard of consecutive masks"]
    header += ["overlap with first mask (end)", "95 % CI", "chance overlap p"]
    lines = [
        "## Does importance drift?",
        "",
        "`full` runs the importance statistic observe-only (nothing isolated); `epi` "
        "protects its masks; `random_mask` is the chance level, measured. The overlap is "
        "|first ∩ final| / |final|, whose chance value for two independent masks of density p "
        "is p itself (p/(2−p) is the chance *Jaccard*, the reference for the consecutive-mask "
        "column).",
        "",
        table(header, rows),
        "",
    ]
    for png in sorted((out / "img").glob("*_epi_drift.png")):
        lines += [f"![{png.stem}](img/{png.name})", ""]
    return lines


def claims_section(claims: list[list[str]]) -> list[str]:
    return [
        "## The paper's claims on our numbers",
        "",
        "Rule: the difference is taken per seed (a seed shares data and base model across "
        "methods) and signed so that positive favours the claim; a claim is *supported* when "
        "the whole 95 % t interval of the mean difference (`experiments.stats.mean_ci`, "
        "n = 3 seeds) favours it, *contradicted* when the whole interval goes the other way, "
        "otherwise *not shown*. The equivalence claim uses two one-sided tests "
        "(`experiments.stats.equivalence_verdict`) with a margin of "
        f"±{EQUIVALENCE_MARGIN * 100:.0f} points of average accuracy, fixed before the test "
        "was run: *supported* only when the "
        "90 % interval lies inside the margin, *different* when the 95 % interval excludes 0, "
        "otherwise *not shown*. Differences are in points of accuracy or forgetting. The drift "
        "claim (an overlap, not a difference) needs the 95 % interval of the overlap wholly "
        f"above {DRIFT_FACTOR:.0f} × p and below {DRIFT_CEILING}.",
        "",
        table(["scenario", "claim", "estimate (95 % CI)", "verdict"], claims),
    ]


def write_report(out: Path, raw: dict[str, Any]) -> Path:
    """Rewrite the generated part of `out`/epi.md (and its figures) from the merged raw results."""
    results = raw["results"]
    lines, claims = setup(raw), []
    if "mixed" in results:
        lines += mixed_section(results["mixed"], out, raw["steps"])
        claims += mixed_claims(results["mixed"])
    if "sequential" in results:
        lines += sequential_section(results["sequential"])
        claims += sequential_claims(results["sequential"])
    drift_rows, drift_claims = drift(results)
    lines += drift_section(drift_rows, out) + claims_section(claims + drift_claims)
    path = out / PAGE
    replace_section(path, "results", "\n".join(lines))
    return path
