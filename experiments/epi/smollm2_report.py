"""The SmolLM2 lane's part of docs/results/epi.md, between `<!-- epi-smollm2:begin -->` and
`<!-- epi-smollm2:end -->`, and its figure, every number computed from the committed
docs/results/epi_smollm2/*.json:

    python -m experiments.epi.smollm2_lane report"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from components.common.io import read_json
from components.common.plots import pyplot
from experiments.report import SPREAD_NOTE, mean_std, pm, replace_section, table
from experiments.stats import (
    LEVEL,
    Interval,
    equivalence_verdict,
    mean_ci,
    threshold_verdict,
)

SECTION = "epi-smollm2"
IMAGE = "epi_smollm2_forgetting.png"
LANE_TITLES = {
    "lora": "LoRA (r = 8, q_proj + v_proj)",
    "full_ft": "full fine-tuning",
    "lora_fictional": "second regime, LoRA: SFT on the capitals of 36 invented countries",
}
Runs = Sequence[dict[str, Any]]


def values(runs: Runs, key: str) -> list[float]:
    return [float(r[key]) if key in r else math.nan for r in runs]


def new_task_accuracy(run: dict[str, Any]) -> float:
    """The average exact-match accuracy over the new tasks (the finetune step's `acc.<task>`)."""
    accs = [v for k, v in run.items() if k.startswith("acc.")]
    return sum(accs) / len(accs) if accs else math.nan


def phenomenon(runs: Runs) -> dict[str, Any]:
    """Full SFT's forgetting over seeds: mean, sample std, the 95 % t interval and the
    pre-registered verdict ('forgetting shown' when the interval lies wholly above 0)."""
    forgot = values(runs, "forgetting")
    mean, std = mean_std(forgot)
    interval = mean_ci(forgot)
    shown = threshold_verdict(interval, 0.0) == "supported"
    return {
        "forgetting": forgot,
        "seeds": [r["seed"] for r in runs],
        "mean": mean,
        "std": std,
        "ci": [interval.low, interval.high],
        "level": LEVEL,
        "verdict": "forgetting shown" if shown else "no forgetting shown",
    }


def paired(results: dict[str, Runs], a: str, b: str, key: str) -> list[float]:
    """Per-seed a − b of `key`, matched by seed."""
    by_seed = {r["seed"]: r for r in results[b]}
    out = []
    for run in results[a]:
        other = by_seed[run["seed"]]
        out.append(metric(run, key) - metric(other, key))
    return out


def metric(run: dict[str, Any], key: str) -> float:
    return new_task_accuracy(run) if key == "new_tasks" else float(run[key])


def claims(results: dict[str, Runs]) -> list[tuple[str, Interval, str]]:
    """The pre-registered claims: (claim, estimate with its CI, verdict)."""
    rows = []
    for claim, a, b in (
        ("EPI forgets less than full SFT: forgetting(full) − forgetting(epi)", "full", "epi"),
        (
            "importance matters: forgetting(random_mask) − forgetting(epi)",
            "random_mask",
            "epi",
        ),
    ):
        diff = paired(results, a, b, "forgetting")
        interval = mean_ci(diff)
        rows.append((claim, interval, threshold_verdict(interval, 0.0)))
    return rows


def equivalences(
    results: dict[str, Runs], forgetting_margin: float, accuracy_margin: float
) -> list[tuple[str, Interval, str]]:
    """TOST rows, epi − full: forgetting and the new tasks' average accuracy (90 % CI shown)."""
    rows = []
    for claim, key, margin in (
        ("EPI forgets as much as full SFT", "forgetting", forgetting_margin),
        ("EPI learns the new tasks as well as full SFT", "new_tasks", accuracy_margin),
    ):
        diff = paired(results, "epi", "full", key)
        interval = mean_ci(diff, level=0.90)
        label = f"{claim} (TOST, ±{margin * 100:g} points; epi − full)"
        rows.append((label, interval, equivalence_verdict(diff, margin)))
    return rows


def bracket(interval: Interval) -> str:
    """`[low, high]` in points (`[n/a]` with fewer than two seeds, `n/a` without a value)."""
    text = interval.format(1, 100)
    return text.split(" ", 1)[1] if " " in text else text


def ci_cell(interval: Interval, level: str = "") -> str:
    return interval.format(1, 100) + (f" ({level})" if level else "")


def baseline_lines(baseline: dict[str, Any], lane: str = "lora") -> list[str]:
    check = phenomenon(baseline["runs"])
    per_seed = ", ".join(
        f"seed {s}: {f * 100:.1f}" for s, f in zip(check["seeds"], check["forgetting"], strict=True)
    )
    interval = Interval(check["mean"], *check["ci"])
    saved = "baseline.json" if lane == "lora" else f"baseline_{lane}.json"
    return [
        f"The base knows {len(baseline['known'])} of the {baseline['probed']} probed capitals "
        f"(p ≥ 0.5; mean p on them {baseline['mean_before'] * 100:.1f} %). Full SFT only, "
        f"{baseline['steps']} steps, seeds {check['seeds']} (`{saved}`, committed before "
        "any EPI run):",
        "",
        table(
            ["forgetting per seed (pts)", "mean ± std (pts)", "95 % t CI (pts)", "result"],
            [
                [
                    per_seed,
                    pm(check["forgetting"], 1, 100),
                    bracket(interval),
                    f"**{check['verdict']}**",
                ]
            ],
        ),
        "",
    ]


def compare_lines(compare: dict[str, Any], prereg: dict[str, Any], lane: str = "lora") -> list[str]:
    results = compare["results"]
    rows = []
    for method, runs in results.items():
        rows.append(
            [
                method,
                pm(values(runs, "forgetting"), 1, 100),
                bracket(mean_ci(values(runs, "forgetting"))),
                pm(values(runs, "still_known"), 1, 100),
                pm([new_task_accuracy(r) for r in runs], 1, 100),
                pm(values(runs, "seconds"), 0),
            ]
        )
    if lane == "lora":
        where = f"the same seeds {compare['seeds']} (`compare.json`; `full` is the baseline's)"
    else:
        where = f"fresh seeds {compare['seeds']} (`compare_{lane}.json`; `full` re-run on them)"
    lines = [f"Comparison on {where}. Points, {SPREAD_NOTE}.", ""]
    if compare.get("forced"):
        lines += [
            "**Run although the baseline showed no forgetting** (`--force`): the pre-registered "
            "rule says not to compare, so the rows below test nothing.",
            "",
        ]
    lines += [
        table(
            [
                "method",
                "forgetting (pts)",
                "95 % t CI",
                "known capitals still known (%)",
                "new tasks' accuracy (%)",
                "seconds per run",
            ],
            rows,
        ),
        "",
        "Pre-registered claims (95 % paired t interval of per-seed differences, positive favours "
        "the claim; equivalence only by TOST with the pre-registered margin):",
        "",
    ]
    margins = (prereg["margins"]["forgetting"], prereg["margins"]["new_tasks_accuracy"])
    rows = [[c, ci_cell(i), f"**{v}**"] for c, i, v in claims(results)]
    rows += [[c, ci_cell(i, "90 % CI"), f"**{v}**"] for c, i, v in equivalences(results, *margins)]
    lines += [table(["claim", "estimate (pts, CI)", "verdict"], rows), ""]
    return lines


def section(prereg: dict[str, Any], lanes: dict[str, dict[str, Any]], image: str | None) -> str:
    lines = [
        "### Pre-registration",
        "",
        f"Written {prereg['written']} (`epi_smollm2/preregistration.json`). Metric: "
        f"{prereg['metric']}. Methods {prereg['methods']}, seeds {prereg['seeds']}; new tasks: "
        f"{prereg['new_tasks']}.",
        "",
        table(["rule", "as written"], [[k, v] for k, v in prereg["rules"].items()]),
        "",
        table(
            ["lane", "steps", "batch", "lr", "budget (stated before running)", "run by default"],
            [
                [
                    LANE_TITLES.get(name, name),
                    spec["steps"],
                    spec["batch_size"],
                    spec["learning_rate"],
                    spec["budget"],
                    "yes" if spec["run_by_default"] else "no (`--full-ft`)",
                ]
                for name, spec in prereg["lanes"].items()
            ],
        ),
        "",
    ]
    if not lanes:
        lines += ["No lane has been run yet.", ""]
    for name, files in lanes.items():
        lines += [f"### {LANE_TITLES.get(name, name)}", ""]
        if name == "lora_fictional" and "fictional" in prereg:
            second = prereg["fictional"]
            lines += [
                f"Preregistered in `epi_smollm2/preregistration_fictional.json`, "
                f"{second['written']}: {second['why']}. New task: {second['new_tasks']}. "
                f"Order: {second['order']}",
                "",
            ]
        lines += ["#### 1. Is there forgetting?", ""]
        lines += baseline_lines(files["baseline"], name)
        lines += ["#### 2. EPI vs full SFT vs random mask", ""]
        if "compare" in files:
            lines += compare_lines(files["compare"], prereg, name)
            if image:
                lines += [f"![forgetting per method]({image})", ""]
        elif phenomenon(files["baseline"]["runs"])["verdict"] != "forgetting shown":
            lines += [
                "Not run, as pre-registered: full SFT shows no forgetting on this lane, so there "
                "is nothing for EPI or the random mask to reduce.",
                "",
            ]
        else:
            lines += ["Not run yet.", ""]
    return "\n".join(lines).rstrip("\n")


def plot(lanes: dict[str, dict[str, Any]], path: Path) -> Path | None:
    """Forgetting per method (mean, 95 % t CI bars, seeds as dots), one panel per compared lane."""
    compared = {n: f["compare"]["results"] for n, f in lanes.items() if "compare" in f}
    if not compared:
        return None
    plt = pyplot()
    fig, axes = plt.subplots(1, len(compared), figsize=(5.0 * len(compared), 4.0), squeeze=False)
    for ax, (name, results) in zip(axes[0], compared.items(), strict=True):
        for x, runs in enumerate(results.values()):
            forgot = [v * 100 for v in values(runs, "forgetting")]
            interval = mean_ci(forgot)
            low = interval.estimate - interval.low if not math.isnan(interval.low) else 0.0
            ax.bar(x, interval.estimate, color="#8fb3d9", width=0.6)
            ax.errorbar(x, interval.estimate, yerr=[[low], [low]], color="black", capsize=6)
            ax.scatter([x] * len(forgot), forgot, color="black", s=12, zorder=3)
        ax.set_xticks(range(len(results)), list(results))
        ax.axhline(0.0, color="grey", linewidth=0.8)
        ax.set_title(f"SmolLM2 {LANE_TITLES.get(name, name)}")
        ax.set_ylabel("forgetting of known capitals (pts of mean p)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def load_lanes(results_dir: Path) -> dict[str, dict[str, Any]]:
    lanes: dict[str, dict[str, Any]] = {}
    for name in LANE_TITLES:
        tag = "" if name == "lora" else f"_{name}"
        for kind in ("baseline", "compare"):
            path = results_dir / f"{kind}{tag}.json"
            if path.is_file():
                lanes.setdefault(name, {})[kind] = read_json(path)
    return {n: f for n, f in lanes.items() if "baseline" in f}


def write_report(results_dir: Path) -> list[Path]:
    """The page section (in results_dir/../epi.md) and the figure (results_dir/../img/)."""
    prereg = read_json(results_dir / "preregistration.json")
    if (results_dir / "preregistration_fictional.json").is_file():
        prereg["fictional"] = read_json(results_dir / "preregistration_fictional.json")
    lanes = load_lanes(results_dir)
    png = plot(lanes, results_dir.parent / "img" / IMAGE)
    page = results_dir.parent / "epi.md"
    replace_section(page, SECTION, section(prereg, lanes, f"img/{IMAGE}" if png else None))
    return [page] + ([png] if png else [])
