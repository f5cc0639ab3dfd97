"""The "regimes where full SFT suffers" part of docs/results/epi.md (issue 17), written from the
committed docs/results/epi_regimes/*.json: the pre-registration, the regime choice (full SFT only,
its own seeds), then the 7-method comparison on fresh seeds with a verdict per claim. The part sits
between `<!-- regimes:begin -->` and `<!-- regimes:end -->`.

    python -m experiments.epi.regimes report"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from components.common.io import read_json
from components.common.plots import grouped_bar_plot
from experiments.epi.report import PAGE, Runs, cell, differences, stat, values, verdict
from experiments.report import SPREAD_NOTE, replace_section, table
from experiments.stats import Interval, equivalence_verdict, mean_ci, threshold_verdict

RAW = "epi_regimes"
# TOST margin for "EPI learns the new tasks as well as full SFT", in accuracy (5 points);
# fixed in preregistration.json before the comparison ran
EQUIVALENCE_MARGIN = 0.05
# (claim, a, b, metric, higher is better), as pre-registered
RETAIN_CLAIMS = (
    ("EPI forgets the base's recall less than full SFT", "epi", "full", "drop.recall", False),
    ("EPI forgets less than EPI-static", "epi", "epi_static", "drop.recall", False),
    (
        "importance matters: EPI forgets less than a random mask",
        "epi",
        "random_mask",
        "drop.recall",
        False,
    ),
    ("sign check: EPI forgets less than inverse-EPI", "epi", "inverse_epi", "drop.recall", False),
    (
        "static isolation (CPI, staged) forgets less than full SFT",
        "cpi",
        "full",
        "drop.recall",
        False,
    ),
)
CONFLICT_CLAIMS = (
    ("EPI beats full SFT on average accuracy", "epi", "full", "acc_mean", True),
    ("EPI beats full SFT on worst-task accuracy", "epi", "full", "worst", True),
    ("EPI ≥ EPI-static on worst-task accuracy", "epi", "epi_static", "worst", True),
    ("importance matters: EPI beats a random mask", "epi", "random_mask", "acc_mean", True),
    ("sign check: EPI beats inverse-EPI", "epi", "inverse_epi", "acc_mean", True),
    (
        "isolation on the staged schedule: CPI beats staged full SFT (multistage)",
        "cpi",
        "multistage",
        "acc_mean",
        True,
    ),
)


def forgetting_choice(raw: dict[str, Any], task: str) -> tuple[Interval, str]:
    """The retain rule: the 95 % t interval of before − after under full SFT, and whether it lies
    wholly above 0 ('forgetting shown') or not."""
    interval = mean_ci(values(raw["results"]["full"], f"drop.{task}"))
    shown = threshold_verdict(interval, 0.0) == "supported"
    return interval, "forgetting shown" if shown else "no forgetting shown"


def transfer_choice(raw: dict[str, Any], task: str) -> tuple[Interval, str]:
    """The conflict rule: the 95 % t interval of multi-task − single-task full SFT on `task`,
    paired by seed; 'negative transfer' when it lies wholly below 0, 'positive transfer' when
    wholly above, else 'not shown'."""
    results = raw["results"]
    interval = mean_ci(differences(results["full"], results[f"single:{task}"], f"acc.{task}"))
    word = threshold_verdict(interval, 0.0)
    return interval, {"contradicted": "negative transfer", "supported": "positive transfer"}.get(
        word, "not shown"
    )


def passed(raw: dict[str, Any]) -> bool:
    """Whether a candidate's choice result meets its pre-registered rule."""
    if "single:" + raw_tasks(raw)[0] in raw["results"]:
        return any(transfer_choice(raw, t)[1] == "negative transfer" for t in raw_tasks(raw))
    return forgetting_choice(raw, "recall")[1] == "forgetting shown"


def raw_tasks(raw: dict[str, Any]) -> list[str]:
    """The tasks a regime's SFT trains (single-task runs exist for them), else the evaluated."""
    singles = sorted(k.removeprefix("single:") for k in raw["results"] if k.startswith("single:"))
    if singles:
        return singles
    first = raw["results"]["full"][0]
    return sorted(k.removeprefix("acc.") for k in first if k.startswith("acc.") and k != "acc_mean")


def choice_section(prereg: dict[str, Any], choices: dict[str, dict[str, Any]]) -> list[str]:
    lines = [
        "### Regime choice (pre-registered; full SFT only, before any EPI run)",
        "",
        "Candidates, seeds and rules were written down in `epi_regimes/preregistration.json` "
        f"({prereg['written']}); each candidate's choice result (`epi_regimes/choice-*.json`) was "
        "committed before any other method ran on it (`git log -- docs/results/epi_regimes/` "
        "shows the order). The choice runs use full SFT only, on seeds "
        f"{prereg['choice_seeds']}; the comparison below uses fresh seeds "
        f"{prereg['comparison_seeds']}. Data and base are built once per regime (data seed 0) "
        "and shared by choice and comparison: the seeds vary fine-tuning.",
        "",
        table(
            ["candidate", "what it is", "rule"],
            [[n, d, prereg["rules"][n]] for n, d in prereg["candidates"].items()],
        ),
        "",
        f"Selection: {prereg['selection']}.",
        "",
    ]
    rows = []
    for name, raw in choices.items():
        results = raw["results"]
        if name == "retain" or not any(k.startswith("single:") for k in results):
            for task in ("recall",):
                interval, word = forgetting_choice(raw, task)
                rows.append(
                    [
                        name,
                        task,
                        "before SFT (the base)",
                        f"{100 * raw['before'][f'acc.{task}']:.1f}",
                        cell(results["full"], f"acc.{task}"),
                        "forgetting = before − after: " + interval.format(1, 100.0),
                        f"**{word}**",
                    ]
                )
        else:
            for task in raw_tasks(raw):
                single = results[f"single:{task}"]
                interval, word = transfer_choice(raw, task)
                rows.append(
                    [
                        name,
                        task,
                        f"single-task, {int(single[0]['steps'])} steps",
                        cell(single, f"acc.{task}"),
                        cell(results["full"], f"acc.{task}"),
                        "multi − single: " + interval.format(1, 100.0),
                        f"**{word}**",
                    ]
                )
    header = [
        "candidate",
        "task",
        "reference",
        "reference acc.",
        "full SFT acc. (multi-task)",
        "effect (pts, 95 % CI)",
        "result",
    ]
    lines += [
        f"Result (accuracy in percent, {SPREAD_NOTE} {prereg['choice_seeds']}; "
        f"{next(iter(choices.values()))['steps'] if choices else '?'} steps of multi-task SFT):",
        "",
        table(header, rows) if rows else "_No choice results yet._",
        "",
        "Chosen for the comparison: "
        + (", ".join(n for n, raw in choices.items() if passed(raw)) or "none")
        + ".",
        "",
    ]
    return lines


def method_rows(runs: dict[str, Runs], tasks: list[str], extra: list[tuple[str, str]]):
    return [
        [
            label,
            *(cell(rs, f"acc.{t}") for t in tasks),
            cell(rs, "acc_mean"),
            cell(rs, "worst"),
            *(cell(rs, key) for _, key in extra),
        ]
        for label, rs in sorted(runs.items())
        if not label.startswith("single:")
    ]


def with_new_task_mean(runs: dict[str, Runs], tasks: list[str]) -> dict[str, Runs]:
    """Each run plus `new_mean`, the average accuracy over the tasks the SFT trains."""
    return {
        label: [{**r, "new_mean": sum(r[f"acc.{t}"] for t in tasks) / len(tasks)} for r in rs]
        for label, rs in runs.items()
    }


def claim_rows(name: str, runs: dict[str, Runs], claims) -> list[list[str]]:
    rows = []
    for text, a, b, key, higher in claims:
        if a in runs and b in runs:
            word, diff = verdict(runs[a], runs[b], key, higher)
            rows.append([name, text, diff.format(1, 100.0), f"**{word}**"])
    return rows


def retain_section(raw: dict[str, Any], out: Path) -> tuple[list[str], list[list[str]]]:
    new_tasks = ["add", "reverse"]
    runs = with_new_task_mean(raw["results"], new_tasks)
    tasks = ["add", "recall", "reverse"]
    extra = [
        ("new tasks' average", "new_mean"),
        ("recall forgetting (before − after)", "drop.recall"),
    ]
    header = ["method", *tasks, "average", "worst task", *(n for n, _ in extra)]
    lines = [
        "#### retain: forgetting of what the base knew",
        "",
        f"The base answers {100 * raw['before']['acc.recall']:.1f} % of the 50 recall prompts "
        f"before our SFT; every method trains only reverse and add for {raw['steps']} steps "
        f"(seeds {raw['seeds']}). Accuracy in percent, {SPREAD_NOTE}.",
        "",
        table(header, method_rows(runs, tasks, extra)),
        "",
        *difference_table(
            runs,
            [("recall forgetting", "drop.recall", False), ("new tasks' average", "new_mean", True)],
        ),
    ]
    drops = [d for label, rs in runs.items() for d in values(rs, "drop.recall")]
    if drops and min(drops) == max(drops):
        lines += [
            f"Every method forgets the same {100 * drops[0]:.1f} points of recall on every seed: "
            "the isolation methods estimate importance from the new tasks' gradients (or probe "
            "them), which say nothing about the weights that held what the base knew.",
            "",
        ]
    lines += bar_plot(runs, tasks, out / "img" / "epi_regime_retain.png", "retain")
    claims = claim_rows("retain", runs, RETAIN_CLAIMS)
    if "epi" in runs and "full" in runs:
        gaps = differences(runs["epi"], runs["full"], "new_mean")
        same = equivalence_verdict(gaps, EQUIVALENCE_MARGIN)
        claims.append(
            [
                "retain",
                f"EPI learns the new tasks as well as full SFT (TOST ±"
                f"{EQUIVALENCE_MARGIN * 100:.0f} points of their average)",
                mean_ci(gaps, level=0.9).format(1, 100.0) + " (90 % CI)",
                f"**{'supported' if same == 'equivalent' else same}**",
            ]
        )
    return lines, claims


def conflict_section(name: str, raw: dict[str, Any], out: Path):
    runs = raw["results"]
    tasks = raw_tasks(raw)
    header = ["method", *tasks, "average", "worst task"]
    lines = [
        f"#### {name}: A-B/A-C conflict",
        "",
        f"recall and recall_alt ask the same keys in the same format and answer differently; "
        f"{raw['steps']} steps, seeds {raw['seeds']}. Accuracy in percent, {SPREAD_NOTE}.",
        "",
        table(header, method_rows(runs, tasks, [])),
        "",
    ]
    singles = [
        [
            t,
            int(runs[f"single:{t}"][0]["steps"]),
            cell(runs[f"single:{t}"], f"acc.{t}"),
            cell(runs["full"], f"acc.{t}"),
            mean_ci(differences(runs["full"], runs[f"single:{t}"], f"acc.{t}")).format(1, 100.0),
        ]
        for t in tasks
        if f"single:{t}" in runs
    ]
    if singles:
        lines += [
            "Negative transfer on the comparison seeds (multi-task full − single-task full):",
            "",
            table(
                [
                    "task",
                    "single-task steps",
                    "single-task",
                    "multi-task (full)",
                    "multi − single (pts, 95 % CI)",
                ],
                singles,
            ),
            "",
        ]
    lines += difference_table(runs, [("average", "acc_mean", True), ("worst task", "worst", True)])
    lines += bar_plot(runs, tasks, out / "img" / f"epi_regime_{name}.png", name)
    return lines, claim_rows(name, runs, CONFLICT_CLAIMS)


def difference_table(runs: dict[str, Runs], metrics: list[tuple[str, str, bool]]) -> list[str]:
    """Per method, the per-seed paired difference to full SFT (method − full, points, 95 % CI)."""
    if "full" not in runs:
        return []
    rows = [
        [
            label,
            *(
                mean_ci(differences(rs, runs["full"], key)).format(1, 100.0)
                for _, key, _ in metrics
            ),
        ]
        for label, rs in sorted(runs.items())
        if label != "full" and not label.startswith("single:")
    ]
    notes = ", ".join(f"{n} ({'higher' if h else 'lower'} is better)" for n, _, h in metrics)
    return [
        f"Difference to full SFT, method − full per seed (points, 95 % CI): {notes}.",
        "",
        table(["method", *(f"Δ {n}" for n, _, _ in metrics)], rows),
        "",
    ]


def bar_plot(runs: dict[str, Runs], tasks: list[str], path: Path, name: str) -> list[str]:
    per_task = {
        t: {
            m: stat(rs, f"acc.{t}")
            for m, rs in sorted(runs.items())
            if not m.startswith("single:") and stat(rs, f"acc.{t}")
        }
        for t in tasks
    }
    grouped_bar_plot(
        per_task, path, title=f"{name}: accuracy per task (mean ± std)", ylabel="exact match"
    )
    return [f"![{name} accuracy](img/{path.name})", ""]


def load(raw_dir: Path, prefix: str) -> dict[str, dict[str, Any]]:
    """Raw files `<prefix>-<regime>[-seeds-…].json`, seeds of one regime merged in file order."""
    merged: dict[str, dict[str, Any]] = {}
    for path in sorted(raw_dir.glob(f"{prefix}-*.json")):
        raw = read_json(path)
        into = merged.setdefault(raw["regime"], {**raw, "seeds": [], "results": {}})
        if into["steps"] != raw["steps"]:
            raise ValueError(f"{path}: step budget {raw['steps']} ≠ {into['steps']}")
        into["seeds"] = into["seeds"] + raw["seeds"]
        for label, runs in raw["results"].items():
            into["results"].setdefault(label, []).extend(runs)
    return merged


def comparison_lines(
    compared: dict[str, dict[str, Any]], out: Path
) -> tuple[list[str], list[list[str]]]:
    lines: list[str] = []
    claims: list[list[str]] = []
    for name, raw in compared.items():
        part, found = (
            retain_section(raw, out) if name == "retain" else conflict_section(name, raw, out)
        )
        lines += part
        claims += found
    return lines, claims


def write_regime_report(out: Path) -> Path:
    raw_dir = out / RAW
    prereg = read_json(raw_dir / "preregistration.json")
    choices, compared = load(raw_dir, "choice"), load(raw_dir, "compare")
    lines = [
        "## Regimes where full SFT suffers (issue 17)",
        "",
        "The mixed benchmark above shows positive transfer, so it cannot test whether EPI reduces "
        "interference. Order: candidates and rules written down → regime chosen with full SFT "
        "only on its own seeds → the 7 methods compared on fresh seeds. Every number is computed "
        "by `experiments/epi/regime_report.py` from `epi_regimes/*.json`.",
        "",
        *choice_section(prereg, choices),
        "### Comparison on fresh seeds",
        "",
    ]
    if not compared:
        lines += ["_Not run yet._", ""]
    part, claims = comparison_lines(compared, out)
    lines += part
    if claims:
        lines += [
            "#### The paper's claims on these regimes",
            "",
            "Same rule as above: the 95 % t interval of the per-seed paired difference, signed so "
            "that positive favours the claim (for forgetting: b − a); *supported* when wholly "
            "positive, *contradicted* when wholly negative, else *not shown*; equivalence only "
            "by TOST with the margin fixed in the pre-registration.",
            "",
            table(["regime", "claim", "estimate (pts, 95 % CI)", "verdict"], claims),
            "",
        ]
    path = out / PAGE
    replace_section(path, "regimes", "\n".join(lines).rstrip("\n"))
    return path
