"""Render the comparison's results into docs/results/egrm.md: the tables (mean ± sample std over
seeds) between the `<!-- results:begin -->` / `<!-- results:end -->` markers, keeping the text
around them, and the frontier plot img/egrm_frontier.png.

    python -m experiments.egrm.compare --report-only   # re-render from egrm_results.json"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from components.common.plots import line_plot
from experiments.report import SPREAD_NOTE, mean_std, pm, replace_section, table
from experiments.stats import (
    Interval,
    auroc_ci,
    mean_ci,
    paired_difference_ci,
    threshold_verdict,
    wilson_ci,
)

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
    # the replay splits each batched phase's time by tokens: not a measurement (see bench)
    ("wall_ms_per_item", "wall ms (split by tokens)", 1, 2),
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


def _points(values: list[float]) -> list[float]:
    return [100 * v for v in values]


def targets(results: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(claim, measured with its 95% CI over seeds, verdict) for the tiny validation's targets.
    A verdict reads the whole t interval (experiments/stats.py): supported when it clears the
    target, contradicted when it misses it, not shown when it straddles it."""

    def s(*path: str) -> list[float]:
        return per_seed(results, *path)

    ratio = mean_ci(
        [
            e / c
            for e, c in zip(
                s("routes", "egrm.tokens_per_item"),
                s("routes", "cot_vote.tokens_per_item"),
                strict=True,
            )
        ]
    )
    gap = paired_difference_ci(
        _points(s("routes", "egrm.accuracy")), _points(s("routes", "cot_vote.accuracy"))
    )
    hybrid = _points(s("scorers", "hybrid", "eval.best_of_k.scorer"))
    gain = paired_difference_ci(hybrid, _points(s("scorers", "hybrid", "eval.best_of_k.vote")))
    pair = {v: s("scorers", v, "eval.pairwise_accuracy") for v, _ in SCORER_ROWS}
    vs_mse = paired_difference_ci(pair["hybrid"], pair["mse"])
    vs_hinge = paired_difference_ci(pair["hybrid"], pair["hinge"])
    auroc = mean_ci(s("routes", "auroc.consensus_vs_mode"))
    return [
        (
            "V1a: E-GRM tokens <= 0.6x always-CoT voting",
            f"{ratio.format(2)} x",
            threshold_verdict(ratio, 0.6, greater=False),
        ),
        (
            "V1b: E-GRM accuracy >= always-CoT voting - 1 pt",
            f"{gap.format(1)} pts",
            threshold_verdict(gap, -1.0),
        ),
        (
            "V2a: hybrid scorer best-of-K >= vote + 2 pts",
            f"{gain.format(1)} pts",
            threshold_verdict(gain, 2.0),
        ),
        (
            "V2b: hybrid pairwise accuracy >= MSE-only and hinge-only",
            f"vs MSE {vs_mse.format(3)}; vs hinge {vs_hinge.format(3)}",
            both_verdict(threshold_verdict(vs_mse, 0.0), threshold_verdict(vs_hinge, 0.0)),
        ),
        ("AUROC of consensus >= 0.75", auroc.format(3), threshold_verdict(auroc, 0.75)),
    ]


def both_verdict(first: str, second: str) -> str:
    """A claim made of two: supported when both are, contradicted when either is."""
    if "contradicted" in (first, second):
        return "contradicted"
    return "supported" if first == second == "supported" else "not shown"


def as_share(interval: Interval) -> str:
    """A t interval of an accuracy in %, clipped to [0, 100] (three seeds give wide ones)."""
    low, high = max(interval.low, 0.0), min(interval.high, 1.0)
    return Interval(interval.estimate, low, high).format(1, 100)


def route_table(results: dict[str, Any]) -> list[str]:
    rows = []
    for key, label in ROUTE_ROWS:
        cells = [
            pm(per_seed(results, "routes", f"{key}.{metric}"), digits, scale)
            for metric, _, scale, digits in COSTS
        ]
        accuracy_ci = as_share(mean_ci(per_seed(results, "routes", f"{key}.accuracy")))
        rows.append([label, cells[0], accuracy_ci, *cells[1:]])
    columns = [column for _, column, _, _ in COSTS]
    header = ["route", columns[0], "accuracy 95% CI", *columns[1:]]
    return [
        "**Replay of every route** from one shared decoding per seed (M direct samples and K CoT "
        "paths of every question, routes decided afterwards: gating.py). Tokens and answers are "
        "those the live gated model produces (same seeded samples); wall times are each batched "
        "phase's time split by tokens, so they follow tokens by construction: the measured wall "
        "time is in the live section below.",
        "",
        f"Seeds {', '.join(results['seeds'])}; {SPREAD_NOTE}; per eval question; accuracy CI: "
        "t interval over seeds, clipped to [0, 100].",
        "",
        table(header, rows),
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
        "**Threshold sweep** (replay; accuracy %, generated tokens, CoT rate %):",
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
        "**Consensus as a predictor of direct-answer correctness** (AUROC; CI: t over seeds):",
        "",
        table(
            ["answer predicted", "AUROC", "95% CI", "per seed"],
            [
                [
                    label,
                    pm(per_seed(results, "routes", key), 3),
                    mean_ci(per_seed(results, "routes", key)).format(3),
                    ", ".join(f"{v:.3f}" for v in per_seed(results, "routes", key)),
                ]
                for label, key in rows
            ],
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

        gain = paired_difference_ci(
            _points([r["eval.best_of_k.scorer"] for r in runs]),
            _points([r["eval.best_of_k.vote"] for r in runs]),
        )
        rows.append(
            [
                name,
                len(runs),
                cell("eval.best_of_k.scorer", 100, 1),
                cell("eval.best_of_k.vote", 100, 1),
                gain.format(1),
                cell("eval.pairwise_accuracy"),
                cell("eval.spearman"),
            ]
        )
    header = [
        "encoder",
        "seeds",
        "best-of-K acc %",
        "vote acc %",
        "best-of-K - vote, pts [95% CI]",
        "pairwise acc",
        "Spearman",
    ]
    return [
        "",
        f"**Encoders** (hybrid loss, same paths; default `{default}`):",
        "",
        table(header, rows),
    ]


def targets_table(results: dict[str, Any]) -> list[str]:
    rows = [list(row) for row in targets(results)]
    n = len(results["seeds"])
    return [
        "",
        f"**Targets of the tiny validation** (replay; mean over {n} seeds [95% t CI]; "
        "differences paired by seed; a verdict is read off the whole CI):",
        "",
        table(["claim", "measured [95% CI]", "verdict"], rows),
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
    """One run on `questions` items: Wilson CIs for the rates, Hanley-McNeil for the AUROCs (the
    positives are the items whose answer is right, counted back from the stored accuracies)."""
    if "smollm2" not in results:
        return []
    r = results["smollm2"]
    n = r["questions"]

    def count(rate: float, of: int = n) -> int:
        return round(rate * of)

    def rate(value: float, of: int = n) -> str:
        return wilson_ci(count(value, of), of).format(0, 100) if of else "n/a (none)"

    direct = n - count(r["trigger_rate"])
    right = {"mode": count(r["mode_accuracy"]), "greedy": count(r["greedy_accuracy"])}
    aurocs = {
        which: auroc_ci(r[f"auroc.consensus_vs_{which}"], right[which], n - right[which])
        for which in ("mode", "greedy")
    }
    header = [
        "CoT trigger rate %",
        "AUROC (majority)",
        "AUROC (greedy)",
        "greedy acc %",
        "majority acc %",
        "acc when routed direct %",
        "tokens per item (probe)",
    ]
    row = [
        rate(r["trigger_rate"]),
        aurocs["mode"].format(3),
        aurocs["greedy"].format(3),
        rate(r["greedy_accuracy"]),
        rate(r["mode_accuracy"]),
        rate(r["accuracy_when_routed_direct"], direct) if direct else "n/a (none)",
        f"{r['tokens_per_item']:.1f}",
    ]
    verdict = threshold_verdict(aurocs["mode"], 0.5)
    return [
        "",
        f"**Real SmolLM2-135M-Instruct**, {r['questions']} sums of {r['terms'][0]}-"
        f"{r['terms'][1]} digits in words, M = {r['m']}, tau = {r['tau']} (one run; 95% CIs: "
        "Wilson for rates, Hanley-McNeil for AUROCs):",
        "",
        table(header, [row]),
        "",
        f"Consensus better than chance (AUROC > 0.5): {verdict}.",
    ]


LIVE_ROUTES = (
    ("egrm", "E-GRM (gate + scorer, live)"),
    ("cot_vote", "always CoT + majority vote"),
    ("always_direct", "always direct (greedy)"),
)


def _interval(values: list[float], digits: int, scale: float = 1.0) -> str:
    """A stored `[estimate, low, high]` as `estimate [low, high]`."""
    estimate, low, high = (v * scale for v in values)
    return f"{estimate:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def live_table(live: dict[str, Any]) -> list[str]:
    """The gated model as it serves, against the baselines, measured in one run per setup (a
    policy/scorer pair; bench/egrm_gated.py's JSON): the page's headline E-GRM figures."""
    lines: list[str] = []
    for name, setup in live["setups"].items():
        lines += [f"**Setup `{name}`**: {setup['about']}.", "", *setup_table(setup), ""]
    return [
        *lines,
        "Accuracy: Wilson 95% CI over the questions (the answers are identical in every "
        "repetition). Wall time: t 95% CI over the repetitions; ratios are taken within each "
        "repetition. Verdicts read the whole CI.",
    ]


def setup_table(setup: dict[str, Any]) -> list[str]:
    header = (
        "route",
        "accuracy % [95% CI]",
        "tokens / question",
        "tokens vs CoT",
        "wall ms / question [95% CI]",
        "wall vs CoT [95% CI]",
        "CoT rate %",
    )
    rows = [
        (
            label,
            _interval(r["accuracy"], 1, 100),
            f"{r['tokens_per_question']:.1f}",
            f"{r['token_ratio_vs_cot_vote']:.2f}x",
            _interval(r["wall_ms_per_question"], 2),
            _interval(r["wall_ratio_vs_cot_vote"], 3),
            f"{100 * r['trigger_rate']:.0f}",
        )
        for name, label in LIVE_ROUTES
        for r in [setup["summary"][name]]
    ]
    egrm = setup["summary"]["egrm"]
    return [
        f"Seed {setup['seed']}; {setup['questions']} eval questions, {setup['reps']} interleaved "
        f"repetitions; tau = {setup['tau']}, M = {setup['m']}, K = {setup['k']}; "
        f"{setup['machine']}.",
        "",
        table(header, rows),
        "",
        f"V1 (cost), E-GRM <= {setup['target_ratio']}x always-CoT: tokens "
        f"{egrm['token_ratio_vs_cot_vote']:.2f}x "
        f"({'met' if egrm['tokens_target_met'] else 'missed'}); wall-time ratio "
        f"{_interval(egrm['wall_ratio_vs_cot_vote'], 3)}: {egrm['wall_verdict']}. "
        f"V1 (accuracy), E-GRM >= always-CoT - {setup['accuracy_margin']:g} pt: "
        f"{_interval(egrm['accuracy_gap_vs_cot_vote'], 1)} pts (paired by question, t CI): "
        f"{egrm['accuracy_verdict']}.",
    ]


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


def write_report(
    results: dict[str, Any], out_dir: Path, live: dict[str, Any] | None = None
) -> Path:
    """The replay's tables (section `results`) and, given bench/egrm_gated.py's JSON, the live
    measurement (section `live`)."""
    image = frontier(results, out_dir / "img" / "egrm_frontier.png")
    target = out_dir / "egrm.md"
    if live is not None:
        replace_section(target, "live", "\n".join(live_table(live)))
    replace_section(target, "results", "\n".join(tables(results, f"img/{image.name}")))
    return target
