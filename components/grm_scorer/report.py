"""Render the comparison's results: tables (mean ± std over seeds) between the `<!-- results -->`
markers of docs/results/egrm.md (text outside the markers is kept), and the frontier plot."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from components.common.io import atomic_path
from components.common.plots import line_plot

START, END = "<!-- results -->", "<!-- /results -->"
ROUTE_ROWS = (
    ("always_direct", "always direct (greedy)"),
    ("cot_vote", "always CoT + majority vote"),
    ("cot_scorer", "always CoT + scorer"),
    ("gated_vote", "gating + vote"),
    ("egrm", "E-GRM (gating + scorer)"),
    ("best_of_k_oracle", "oracle best-of-K (reference)"),
)
COSTS = (
    ("accuracy", "accuracy", 100, ".1f"),
    ("tokens_per_item", "gen. tokens", 1, ".1f"),
    ("forward_passes_per_item", "forward passes", 1, ".1f"),
    ("gflops_per_item", "MFLOPs", 1000, ".2f"),
    ("wall_ms_per_item", "wall ms", 1, ".2f"),
    ("trigger_rate", "CoT rate", 100, ".0f"),
)


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    clean = [v for v in values if v is not None and not math.isnan(v)]
    if not clean:
        return math.nan, math.nan
    return statistics.fmean(clean), statistics.stdev(clean) if len(clean) > 1 else 0.0


def fmt(values: Sequence[float], scale: float = 1.0, spec: str = ".3f") -> str:
    mean, std = mean_std([v * scale for v in values])
    return "n/a" if math.isnan(mean) else f"{mean:{spec}} ± {std:{spec}}"


def _collect(results: dict[str, Any], *path: str) -> list[float]:
    values = []
    for seed in results["seeds"].values():
        node: Any = seed
        for key in path:
            node = node[key]
        values.append(float(node))
    return values


def targets(results: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """(claim, measured, holds) for the spec's pass criteria, on the means over seeds."""

    def m(*path: str) -> float:
        return mean_std(_collect(results, *path))[0]

    ratio = m("routes", "egrm.tokens_per_item") / m("routes", "cot_vote.tokens_per_item")
    gap = 100 * (m("routes", "egrm.accuracy") - m("routes", "cot_vote.accuracy"))
    hybrid = {v: m("scorers", v, "eval.best_of_k.scorer") for v in ("hybrid", "mse", "hinge")}
    vote = m("scorers", "hybrid", "eval.best_of_k.vote")
    pair = {v: m("scorers", v, "eval.pairwise_accuracy") for v in ("hybrid", "mse", "hinge")}
    auroc = m("routes", "auroc.consensus_vs_mode")
    return [
        ("V1a: E-GRM tokens <= 0.6x always-CoT voting", f"{ratio:.2f}x", ratio <= 0.6),
        ("V1b: E-GRM accuracy >= always-CoT voting - 1 pt", f"{gap:+.1f} pts", gap >= -1.0),
        (
            "V2a: hybrid scorer best-of-K >= vote + 2 pts",
            f"{100 * (hybrid['hybrid'] - vote):+.1f} pts",
            hybrid["hybrid"] - vote >= 0.02,
        ),
        (
            "V2b: hybrid pairwise accuracy >= MSE-only and hinge-only",
            f"{pair['hybrid']:.3f} vs {pair['mse']:.3f} / {pair['hinge']:.3f}",
            pair["hybrid"] >= max(pair["mse"], pair["hinge"]),
        ),
        ("AUROC of consensus >= 0.75", f"{auroc:.3f}", auroc >= 0.75),
    ]


def tables(results: dict[str, Any], image: str) -> list[str]:
    seeds = ", ".join(results["seeds"])
    lines = [f"Seeds {seeds}; mean ± std over seeds; per eval question.", ""]
    lines += ["| route | " + " | ".join(c[1] for c in COSTS) + " |"]
    lines += ["|---" * (len(COSTS) + 1) + "|"]
    for key, label in ROUTE_ROWS:
        cells = [
            fmt(_collect(results, "routes", f"{key}.{metric}"), scale, spec)
            for metric, _, scale, spec in COSTS
        ]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += ["", "Accuracy and CoT rate in %. MFLOPs: analytic, decoder plus scorer.", ""]

    lines += per_k_table(results)
    lines += ["**Threshold sweep** (accuracy %, generated tokens, CoT rate %):", ""]
    lines += ["| tau | E-GRM acc | E-GRM tokens | gate+vote acc | gate+vote tokens | CoT rate |"]
    lines += ["|---|---|---|---|---|---|"]
    for tau in results["settings"]["evaluate"]["tau_sweep"]:
        t = f"tau{tau:g}"

        def col(route: str, metric: str, scale: float = 1.0, spec: str = ".1f", t=t) -> str:
            return fmt(_collect(results, "routes", f"sweep.{route}.{t}.{metric}"), scale, spec)

        lines.append(
            f"| {tau:g} | {col('egrm', 'accuracy', 100)} | {col('egrm', 'tokens_per_item')} | "
            f"{col('gated_vote', 'accuracy', 100)} | {col('gated_vote', 'tokens_per_item')} | "
            f"{col('egrm', 'trigger_rate', 100, '.0f')} |"
        )
    lines += ["", f"![accuracy vs generated tokens]({image})", ""]

    lines += ["**Consensus as a predictor of direct-answer correctness** (AUROC):", ""]
    lines += [
        "| answer predicted | AUROC |",
        "|---|---|",
        f"| majority of the M direct samples | "
        f"{fmt(_collect(results, 'routes', 'auroc.consensus_vs_mode'))} |",
        f"| greedy direct answer | "
        f"{fmt(_collect(results, 'routes', 'auroc.consensus_vs_greedy'))} |",
        "",
    ]

    lines += ["**Scorers** on the eval questions' K policy paths (same paths for all):", ""]
    lines += [
        "| scorer loss | best-of-K acc % | vote acc % | oracle acc % | pairwise acc | Spearman |"
        " val pairwise acc |",
        "|---|---|---|---|---|---|---|",
    ]
    for variant, label in (
        ("hybrid", "hybrid 0.7 Huber + 0.3 hinge"),
        ("mse", "MSE only"),
        ("hinge", "hinge only"),
    ):

        def s(metric: str, scale: float = 1.0, spec: str = ".3f", variant=variant) -> str:
            return fmt(_collect(results, "scorers", variant, metric), scale, spec)

        lines.append(
            f"| {label} | {s('eval.best_of_k.scorer', 100, '.1f')} | "
            f"{s('eval.best_of_k.vote', 100, '.1f')} | {s('eval.best_of_k.oracle', 100, '.1f')} | "
            f"{s('eval.pairwise_accuracy')} | {s('eval.spearman')} | "
            f"{s('val.pairwise_accuracy.all_paths')} |"
        )
    encoders = sorted({e for seed in results["seeds"].values() for e in seed.get("encoders", {})})
    if encoders:
        default = results["settings"]["scorer"]["encoder"]
        lines += ["", f"**Encoders** (hybrid loss, same paths; default `{default}`):", ""]
        lines += [
            "| encoder | seeds | best-of-K acc % | vote acc % | pairwise acc | Spearman |",
            "|---|---|---|---|---|---|",
        ]
        for name in [default, *encoders]:
            runs = [
                seed["scorers"]["hybrid"] if name == default else seed["encoders"][name]
                for seed in results["seeds"].values()
                if name == default or name in seed.get("encoders", {})
            ]

            def e(metric: str, scale: float = 1.0, spec: str = ".3f", runs=runs) -> str:
                return fmt([r[metric] for r in runs], scale, spec)

            lines.append(
                f"| {name} | {len(runs)} | {e('eval.best_of_k.scorer', 100, '.1f')} | "
                f"{e('eval.best_of_k.vote', 100, '.1f')} | {e('eval.pairwise_accuracy')} | "
                f"{e('eval.spearman')} |"
            )
    lines += ["", "**Spec targets** (on the means):", "", "| claim | measured | holds |"]
    lines += ["|---|---|---|"]
    for claim, measured, holds in targets(results):
        lines.append(f"| {claim} | {measured} | {'yes' if holds else 'no'} |")
    lines += ["", "**Policy** (per seed):", ""]
    lines += [
        "| seed | base greedy direct acc % | SFT CoT-target share % | policy paths fully right % |"
    ]
    lines += ["|---|---|---|---|"]
    for seed, r in results["seeds"].items():
        lines.append(
            f"| {seed} | {100 * r['policy']['base.direct_accuracy']:.1f} | "
            f"{100 * r['policy']['sft.cot_share']:.1f} | "
            f"{100 * r['paths']['policy_fully_correct']:.1f} |"
        )
    if "smollm2" in results:
        r = results["smollm2"]
        lines += [
            "",
            f"**Real SmolLM2-135M-Instruct**, {r['questions']} sums of {r['terms'][0]}-"
            f"{r['terms'][1]} digits in words, M = {r['m']}, tau = {r['tau']}:",
            "",
            "| CoT trigger rate | AUROC (majority) | AUROC (greedy) | greedy acc | majority acc |"
            " acc when routed direct | tokens per item (probe) |",
            "|---|---|---|---|---|---|---|",
            f"| {r['trigger_rate']:.0%} | {r['auroc.consensus_vs_mode']:.3f} | "
            f"{r['auroc.consensus_vs_greedy']:.3f} | {r['greedy_accuracy']:.0%} | "
            f"{r['mode_accuracy']:.0%} | {_pct(r['accuracy_when_routed_direct'])} | "
            f"{r['tokens_per_item']:.1f} |",
        ]
    return lines


def _pct(value: float) -> str:
    return "n/a (none)" if value is None or math.isnan(value) else f"{value:.0%}"


def per_k_table(results: dict[str, Any]) -> list[str]:
    """Accuracy % by difficulty k (mean over seeds) and where E-GRM spends its CoT."""
    seeds = [r for r in results["seeds"].values() if "per_k" in r]
    if not seeds:
        return []
    ks = [row["k"] for row in seeds[0]["per_k"]]
    columns = (
        ("always_direct.accuracy", "direct"),
        ("cot_vote.accuracy", "CoT + vote"),
        ("cot_scorer.accuracy", "CoT + scorer"),
        ("egrm.accuracy", "E-GRM"),
        ("egrm.trigger_rate", "E-GRM CoT rate"),
    )
    lines = ["**By difficulty** (k terms; % , mean over seeds):", ""]
    lines += ["| k | n | " + " | ".join(label for _, label in columns) + " |"]
    lines += ["|---" * (len(columns) + 2) + "|"]
    for index, k in enumerate(ks):
        rows = [seed["per_k"][index] for seed in seeds]
        cells = [f"{100 * statistics.fmean(r[key] for r in rows):.1f}" for key, _ in columns]
        lines.append(f"| {k} | {rows[0]['n']} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def frontier(results: dict[str, Any], path: Path) -> Path:
    taus = results["settings"]["evaluate"]["tau_sweep"]

    def mean_of(key: str) -> float:
        return mean_std(_collect(results, "routes", key))[0]

    series = {
        label: (
            [mean_of(f"sweep.{route}.tau{t:g}.tokens_per_item") for t in taus],
            [mean_of(f"sweep.{route}.tau{t:g}.accuracy") for t in taus],
        )
        for route, label in (("egrm", "E-GRM, tau sweep"), ("gated_vote", "gate + vote, tau sweep"))
    }
    for route, label in (
        ("always_direct", "always direct"),
        ("cot_vote", "always CoT + vote"),
        ("cot_scorer", "always CoT + scorer"),
    ):
        series[label] = (
            [mean_of(f"{route}.tokens_per_item")],
            [mean_of(f"{route}.accuracy")],
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
    block = "\n".join([START, *tables(results, f"img/{image.name}"), END])
    target = out_dir / "egrm.md"
    text = target.read_text(encoding="utf-8") if target.is_file() else ""
    if START in text and END in text:
        text = text[: text.index(START)] + block + text[text.index(END) + len(END) :]
    else:
        text = "# E-GRM reward modeling: results\n\n" + block + "\n"
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return target
