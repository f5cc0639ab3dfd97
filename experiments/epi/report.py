"""Render the comparison's raw results (docs/results/epi_runs/*.json) into docs/results/epi.md:
tables of mean ± sample std over seeds, figures, and a verdict on each claim computed from the
numbers with a fixed rule. The generated part sits between `<!-- results:begin -->` and
`<!-- results:end -->`; the text around it is hand-written and kept.

    python -m experiments.epi.run --report-only   # re-render from epi_runs/*.json"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from components.common.plots import grouped_bar_plot
from experiments.report import SPREAD_NOTE, mean_std, pm, replace_section, table

Runs = list[dict[str, float]]
PAGE = "epi.md"

# (claim, method a, method b, metric, higher is better) on the mixed stream
MIXED_CLAIMS = (
    ("EPI beats full SFT on average accuracy", "epi", "full", "acc_mean", True),
    ("EPI beats static isolation (CPI) on average accuracy", "epi", "cpi", "acc_mean", True),
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
    ("stage memory forgets the first task less than plain EPI", "epi+stage_memory", "epi"),
)


def values(runs: Runs, key: str) -> list[float]:
    """`key` of every run that has it; `worst` is the lowest per-task accuracy of each run."""
    if key == "worst":
        return [min(v for k, v in r.items() if k.startswith("acc.")) for r in runs]
    return [r[key] for r in runs if key in r]


def stat(runs: Runs, key: str) -> tuple[float, float] | None:
    """Mean and sample std of `key` over runs (std 0 for a single run), None when unmeasured."""
    xs = values(runs, key)
    if not xs:
        return None
    mean, std = mean_std(xs)
    return mean, 0.0 if math.isnan(std) else std


def cell(runs: Runs, key: str, scale: float = 100.0, digits: int = 1) -> str:
    """`mean ± std` of `key`, by default as percentage points."""
    return pm(values(runs, key), digits, scale)


def verdict(a: Runs, b: Runs, key: str, higher_is_better: bool = True) -> tuple[str, float]:
    """Compare a against b on `key`: 'supported' when a is better by more than the larger std of
    the two, 'contradicted' when worse by that much, else 'not shown (within noise)'."""
    sa, sb = stat(a, key), stat(b, key)
    if sa is None or sb is None:
        return "not measured", 0.0
    diff = (sa[0] - sb[0]) * (1 if higher_is_better else -1)
    noise = max(sa[1], sb[1], 1e-9)
    if diff > noise:
        return "supported", diff
    if diff < -noise:
        return "contradicted", diff
    return "not shown (within noise)", diff


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


def interference(runs: dict[str, Runs], tasks: list[str]) -> list[str]:
    """Multi-task full SFT against single-task SFT on each task."""
    if not any(k.startswith("single:") for k in runs):
        return []
    rows = []
    for t in tasks:
        single, multi = runs[f"single:{t}"], runs["full"]
        s, m = stat(single, f"acc.{t}"), stat(multi, f"acc.{t}")
        gap = (m[0] - s[0]) * 100 if s and m else float("nan")
        rows.append([t, cell(single, f"acc.{t}"), cell(multi, f"acc.{t}"), f"{gap:+.1f}"])
    return [
        "### Interference (multi-task full SFT − single-task SFT)",
        "",
        "Single-task runs get that task's share of the mixed run's steps "
        "(compute-matched on the task's own samples).",
        "",
        table(["task", "single-task", "multi-task (full)", "interference (pts)"], rows),
        "",
    ]


def mixed_claims(runs: dict[str, Runs]) -> list[list[str]]:
    claims = []
    for text, a, b, key, higher_is_better in MIXED_CLAIMS:
        if a in runs and b in runs:
            word, diff = verdict(runs[a], runs[b], key, higher_is_better)
            claims.append(["mixed", text, f"{diff * 100:+.1f}", f"**{word}**"])
    same, diff = verdict(runs["random_mask"], runs["full"], "acc_mean")
    claims.append(
        [
            "mixed",
            "random mask ≈ full SFT (freezing alone does not help)",
            f"{diff * 100:+.1f}",
            f"**{'supported' if 'noise' in same else 'not shown'}**",
        ]
    )
    return claims


def mixed_section(runs: dict[str, Runs], out: Path) -> list[str]:
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
        *interference(runs, tasks),
    ]


def sequential_claims(runs: dict[str, Runs]) -> list[list[str]]:
    claims = []
    for text, a, b in SEQUENTIAL_CLAIMS:
        if a in runs and b in runs:
            word, diff = verdict(runs[a], runs[b], "forgetting.recall", False)
            claims.append(["sequential", text, f"{-diff * 100:+.1f}", f"**{word}**"])
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


def drift(results: dict[str, dict[str, Runs]]) -> tuple[list[list[str]], list[list[str]]]:
    """Mask-overlap rows for `full` and `epi` of each scenario, and the drift claim, judged on
    `full` (observe-only): overlap with the first mask well below 1 and well above random."""
    rows, claims = [], []
    for scenario, runs in results.items():
        for label in ("full", "epi"):
            if label not in runs or not stat(runs[label], "drift.jaccard_consecutive_mean"):
                continue
            rs = runs[label]
            random_reference = stat(rs, "drift.jaccard_random")[0]
            rows.append(
                [
                    scenario,
                    label,
                    cell(rs, "drift.jaccard_consecutive_mean", 1, 3),
                    cell(rs, "drift.overlap_first_final", 1, 3),
                    f"{random_reference:.3f}",
                ]
            )
            if label == "full":
                overlap = stat(rs, "drift.overlap_first_final")[0]
                word = "supported" if random_reference * 2 < overlap < 0.9 else "not shown"
                claims.append(
                    [
                        scenario,
                        "importance drifts during plain SFT (overlap with the first mask well "
                        "below 1, well above random)",
                        f"{overlap:.3f} vs {random_reference:.3f}",
                        f"**{word}**",
                    ]
                )
    return rows, claims


def drift_section(rows: list[list[str]], out: Path) -> list[str]:
    header = ["scenario", "method", "Jaccard of consecutive masks"]
    header += ["overlap with first mask (end)", "random reference p/(2−p)"]
    lines = [
        "## Does importance drift?",
        "",
        "`full` runs the importance statistic observe-only (nothing isolated); `epi` "
        "protects its masks.",
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
        "Rule: a claim is *supported* when the difference of means favours it by more than "
        "the larger of the two standard deviations, *contradicted* when it goes the other "
        "way by as much, otherwise *not shown*.",
        "",
        table(["scenario", "claim", "difference (pts)", "verdict"], claims),
    ]


def write_report(out: Path, raw: dict[str, Any]) -> Path:
    """Rewrite the generated part of `out`/epi.md (and its figures) from the merged raw results."""
    results = raw["results"]
    lines, claims = setup(raw), []
    if "mixed" in results:
        lines += mixed_section(results["mixed"], out)
        claims += mixed_claims(results["mixed"])
    if "sequential" in results:
        lines += sequential_section(results["sequential"])
        claims += sequential_claims(results["sequential"])
    drift_rows, drift_claims = drift(results)
    lines += drift_section(drift_rows, out) + claims_section(claims + drift_claims)
    path = out / PAGE
    replace_section(path, "results", "\n".join(lines))
    return path
