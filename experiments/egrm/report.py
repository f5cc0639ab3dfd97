"""Render the comparison's results into docs/results/egrm.md: the tables (mean ± sample std over
seeds) between the `<!-- results:begin -->` / `<!-- results:end -->` markers, keeping the text
around them, and the frontier plot img/egrm_frontier.png.

    python -m experiments.egrm.compare --report-only   # re-render from egrm_results.json"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from components.common.plots import line_plot
from experiments.report import SPREAD_NOTE, mean_std, pm, replace_section, table

ROUTE_ROWS = (
    ("always_direct", "always direct (greedy)"),
    ("cot_vote", "always CoT + majority vote"),
    ("cot_scorer", "always CoT + scorer"),
    ("gated_vote", "gating + vote"),
    ("egrm", "E-GRM (gating + scorer)"),
    ("best_of_k_oracle", "oracle best-of-K (reference)"),
)
# (metric, column, scale, digits)
COSTS = (
    ("accuracy", "accuracy", 100, 1),
    ("tokens_per_item", "gen. tokens", 1, 1),
    ("forward_passes_per_item", "forward passes", 1, 1),
    ("gflops_per_item", "MFLOPs", 1000, 2),
    ("wall_ms_per_item", "wall ms", 1, 2),
    ("trigger_rate", "CoT rate", 100, 0),
)
SCORER_ROWS = (
    ("hybrid", "hybrid 0.7 Huber + 0.3 hinge"),
    ("mse", "MSE only"),
    ("hinge", "hinge only"),
)
# the fixed-cost routes drawn as single points next to the tau sweeps
POINT_ROUTES = (
    ("always_direct", "always direct"),
    ("cot_vote", "always CoT + vote"),
    ("cot_scorer", "always CoT + scorer"),
)


def per_seed(results: dict[str, Any], *path: str) -> list[float]:
    """The value at `path` in every seed's results."""
    values = []
    for seed in results["seeds"].values():
        node: Any = seed
        for key in path:
            node = node[key]
        values.append(float(node))
    return values


def mean_of(results: dict[str, Any], *path: str) -> float:
    return mean_std(per_seed(results, *path))[0]


def targets(results: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """(claim, measured, holds) for the tiny validation's targets, on the means over seeds."""

    def m(*path: str) -> float:
        return mean_of(results, *path)

    ratio = m("routes", "egrm.tokens_per_item") / m("routes", "cot_vote.tokens_per_item")
    gap = 100 * (m("routes", "egrm.accuracy") - m("routes", "cot_vote.accuracy"))
    hybrid = m("scorers", "hybrid", "eval.best_of_k.scorer")
    vote = m("scorers", "hybrid", "eval.best_of_k.vote")
    pair = {v: m("scorers", v, "eval.pairwise_accuracy") for v, _ in SCORER_ROWS}
    auroc = m("routes", "auroc.consensus_vs_mode")
    return [
        ("V1a: E-GRM tokens <= 0.6x always-CoT voting", f"{ratio:.2f}x", ratio <= 0.6),
        ("V1b: E-GRM accuracy >= always-CoT voting - 1 pt", f"{gap:+.1f} pts", gap >= -1.0),
        (
            "V2a: hybrid scorer best-of-K >= vote + 2 pts",
            f"{100 * (hybrid - vote):+.1f} pts",
            hybrid - vote >= 0.02,
        ),
        (
            "V2b: hybrid pairwise accuracy >= MSE-only and hinge-only",
            f"{pair['hybrid']:.3f} vs {pair['mse']:.3f} / {pair['hinge']:.3f}",
            pair["hybrid"] >= max(pair["mse"], pair["hinge"]),
        ),
        ("AUROC of consensus >= 0.75", f"{auroc:.3f}", auroc >= 0.75),
    ]


def route_table(results: dict[str, Any]) -> list[str]:
    rows = [
        [label]
        + [
            pm(per_seed(results, "routes", f"{key}.{metric}"), digits, scale)
            for metric, _, scale, digits in COSTS
        ]
        for key, label in ROUTE_ROWS
    ]
    return [
        f"Seeds {', '.join(results['seeds'])}; {SPREAD_NOTE}; per eval question.",
        "",
        table(["route", *(column for _, column, _, _ in COSTS)], rows),
        "",
        "Accuracy and CoT rate in %. MFLOPs: analytic, decoder plus scorer.",
        "",
    ]


def per_k_table(results: dict[str, Any]) -> list[str]:
    """Accuracy % by difficulty k (mean over seeds) and where E-GRM spends its CoT."""
    seeds = [r for r in results["seeds"].values() if "per_k" in r]
    if not seeds:
        return []
    columns = (
        ("always_direct.accuracy", "direct"),
        ("cot_vote.accuracy", "CoT + vote"),
        ("cot_scorer.accuracy", "CoT + scorer"),
        ("egrm.accuracy", "E-GRM"),
        ("egrm.trigger_rate", "E-GRM CoT rate"),
    )
    rows = []
    for index, row in enumerate(seeds[0]["per_k"]):
        at_k = [seed["per_k"][index] for seed in seeds]
        means = [f"{100 * mean_std(r[key] for r in at_k)[0]:.1f}" for key, _ in columns]
        rows.append([row["k"], row["n"], *means])
    return [
        "**By difficulty** (k terms; % , mean over seeds):",
        "",
        table(["k", "n", *(label for _, label in columns)], rows),
        "",
    ]


def sweep_table(results: dict[str, Any], image: str) -> list[str]:
    def cell(route: str, metric: str, tau: float, scale: float = 1.0, digits: int = 1) -> str:
        return pm(per_seed(results, "routes", f"sweep.{route}.tau{tau:g}.{metric}"), digits, scale)

    rows = [
        [
            f"{tau:g}",
            cell("egrm", "accuracy", tau, 100),
            cell("egrm", "tokens_per_item", tau),
            cell("gated_vote", "accuracy", tau, 100),
            cell("gated_vote", "tokens_per_item", tau),
            cell("egrm", "trigger_rate", tau, 100, 0),
        ]
        for tau in results["settings"]["evaluate"]["tau_sweep"]
    ]
    header = ["tau", "E-GRM acc", "E-GRM tokens", "gate+vote acc", "gate+vote tokens", "CoT rate"]
    return [
        "**Threshold sweep** (accuracy %, generated tokens, CoT rate %):",
        "",
        table(header, rows),
        "",
        f"![accuracy vs generated tokens]({image})",
        "",
    ]


def auroc_table(results: dict[str, Any]) -> list[str]:
    rows = [
        ["majority of the M direct samples", "auroc.consensus_vs_mode"],
        ["greedy direct answer", "auroc.consensus_vs_greedy"],
    ]
    return [
        "**Consensus as a predictor of direct-answer correctness** (AUROC):",
        "",
        table(
            ["answer predicted", "AUROC"],
            [[label, pm(per_seed(results, "routes", key), 3)] for label, key in rows],
        ),
        "",
    ]


def scorer_table(results: dict[str, Any]) -> list[str]:
    # (metric, scale, digits)
    columns = (
        ("eval.best_of_k.scorer", 100, 1),
        ("eval.best_of_k.vote", 100, 1),
        ("eval.best_of_k.oracle", 100, 1),
        ("eval.pairwise_accuracy", 1, 3),
        ("eval.spearman", 1, 3),
        ("val.pairwise_accuracy.all_paths", 1, 3),
    )
    rows = [
        [label]
        + [
            pm(per_seed(results, "scorers", variant, metric), digits, scale)
            for metric, scale, digits in columns
        ]
        for variant, label in SCORER_ROWS
    ]
    header = [
        "scorer loss",
        "best-of-K acc %",
        "vote acc %",
        "oracle acc %",
        "pairwise acc",
        "Spearman",
        "val pairwise acc",
    ]
    return [
        "**Scorers** on the eval questions' K policy paths (same paths for all):",
        "",
        table(header, rows),
    ]


def encoder_table(results: dict[str, Any]) -> list[str]:
    """The hybrid scorer on the default encoder and on every alternative a seed trained."""
    seeds = list(results["seeds"].values())
    encoders = sorted({e for seed in seeds for e in seed.get("encoders", {})})
    if not encoders:
        return []
    default = results["settings"]["scorer"]["encoder"]
    rows = []
    for name in [default, *encoders]:
        runs = [
            seed["scorers"]["hybrid"] if name == default else seed["encoders"][name]
            for seed in seeds
            if name == default or name in seed.get("encoders", {})
        ]

        def cell(metric: str, scale: float = 1.0, digits: int = 3, runs=runs) -> str:
            return pm([r[metric] for r in runs], digits, scale)

        rows.append(
            [
                name,
                len(runs),
                cell("eval.best_of_k.scorer", 100, 1),
                cell("eval.best_of_k.vote", 100, 1),
                cell("eval.pairwise_accuracy"),
                cell("eval.spearman"),
            ]
        )
    header = ["encoder", "seeds", "best-of-K acc %", "vote acc %", "pairwise acc", "Spearman"]
    return [
        "",
        f"**Encoders** (hybrid loss, same paths; default `{default}`):",
        "",
        table(header, rows),
    ]


def targets_table(results: dict[str, Any]) -> list[str]:
    rows = [
        [claim, measured, "yes" if holds else "no"] for claim, measured, holds in targets(results)
    ]
    return [
        "",
        "**Targets of the tiny validation** (on the means):",
        "",
        table(["claim", "measured", "holds"], rows),
    ]


def policy_table(results: dict[str, Any]) -> list[str]:
    rows = [
        [
            seed,
            f"{100 * r['policy']['base.direct_accuracy']:.1f}",
            f"{100 * r['policy']['sft.cot_share']:.1f}",
            f"{100 * r['paths']['policy_fully_correct']:.1f}",
        ]
        for seed, r in results["seeds"].items()
    ]
    header = [
        "seed",
        "base greedy direct acc %",
        "SFT CoT-target share %",
        "policy paths fully right %",
    ]
    return ["", "**Policy** (per seed):", "", table(header, rows)]


def smollm2_table(results: dict[str, Any]) -> list[str]:
    if "smollm2" not in results:
        return []
    r = results["smollm2"]
    header = [
        "CoT trigger rate",
        "AUROC (majority)",
        "AUROC (greedy)",
        "greedy acc",
        "majority acc",
        "acc when routed direct",
        "tokens per item (probe)",
    ]
    row = [
        f"{r['trigger_rate']:.0%}",
        f"{r['auroc.consensus_vs_mode']:.3f}",
        f"{r['auroc.consensus_vs_greedy']:.3f}",
        f"{r['greedy_accuracy']:.0%}",
        f"{r['mode_accuracy']:.0%}",
        _pct(r["accuracy_when_routed_direct"]),
        f"{r['tokens_per_item']:.1f}",
    ]
    return [
        "",
        f"**Real SmolLM2-135M-Instruct**, {r['questions']} sums of {r['terms'][0]}-"
        f"{r['terms'][1]} digits in words, M = {r['m']}, tau = {r['tau']}:",
        "",
        table(header, [row]),
    ]


def _pct(value: float | None) -> str:
    return "n/a (none)" if value is None or math.isnan(value) else f"{value:.0%}"


def tables(results: dict[str, Any], image: str) -> list[str]:
    """The results section, table after table."""
    return [
        *route_table(results),
        *per_k_table(results),
        *sweep_table(results, image),
        *auroc_table(results),
        *scorer_table(results),
        *encoder_table(results),
        *targets_table(results),
        *policy_table(results),
        *smollm2_table(results),
    ]


def frontier(results: dict[str, Any], path: Path) -> Path:
    """Accuracy vs generated tokens: the two gated routes over the tau sweep, fixed routes as
    points (means over seeds)."""
    taus = results["settings"]["evaluate"]["tau_sweep"]
    series = {
        label: (
            [mean_of(results, "routes", f"sweep.{route}.tau{t:g}.tokens_per_item") for t in taus],
            [mean_of(results, "routes", f"sweep.{route}.tau{t:g}.accuracy") for t in taus],
        )
        for route, label in (("egrm", "E-GRM, tau sweep"), ("gated_vote", "gate + vote, tau sweep"))
    }
    for route, label in POINT_ROUTES:
        series[label] = (
            [mean_of(results, "routes", f"{route}.tokens_per_item")],
            [mean_of(results, "routes", f"{route}.accuracy")],
        )
    return line_plot(
        series,
        path,
        title=f"E-GRM frontier (tau in {taus}), mean of {len(results['seeds'])} seeds",
        xlabel="generated tokens per question",
        ylabel="accuracy",
    )


def write_report(results: dict[str, Any], out_dir: Path) -> Path:
    image = frontier(results, out_dir / "img" / "egrm_frontier.png")
    target = out_dir / "egrm.md"
    replace_section(target, "results", "\n".join(tables(results, f"img/{image.name}")))
    return target
