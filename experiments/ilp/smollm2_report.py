"""The SmolLM2 benchmark's sections of docs/results/ilp.md, from docs/results/ilp_smollm2/*.json:
`smollm2-dev` (default rules), `smollm2-calibration` (rules chosen on dev), `smollm2-heldout`
(the calibrated rules on the held-out world) and `smollm2-interventions` (the held-out seeds whose
interventions ran: the recovery matrix)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from components.common.io import read_json
from components.common.plots import line_plot
from experiments.ilp import benchmark, report
from experiments.report import SPREAD_NOTE, pm, replace_section, table
from experiments.stats import mean_ci, threshold_verdict

TARGET = 0.7  # issue 17: held-out macro-F1
DOCS = Path(__file__).resolve().parents[2] / "docs/results"


def world_line(result: Mapping[str, Any]) -> str:
    knowledge = result["knowledge"]
    known = sum(p >= 0.5 for p in knowledge.values())
    sizes: dict[str, int] = {}
    for cause in result["seeds"][0]["planted"].values():
        sizes[cause] = sizes.get(cause, 0) + 1
    finetune = result["config"]["finetune"]
    return (
        f"Base probe: SmolLM2 puts p ≥ 0.5 on the true capital of {known} of {len(knowledge)} "
        f"countries (cloze over all {len(knowledge)} capitals). SFT set: "
        + ", ".join(f"{g} {n}" for g, n in sorted(sizes.items()))
        + f" ({sum(sizes.values())} records); LoRA r = {finetune['lora']['r']}, "
        f"{finetune['max_steps']} steps of {finetune['batch_size']} "
        f"({finetune['schedule']}, stage steps {finetune['stage_steps']}), lr "
        f"{finetune['learning_rate']}."
    )


def exposure_table(summary: Mapping[str, Any]) -> str:
    runs = summary["exposure"]
    groups = list(next(iter(runs.values())))
    return table(
        ["run", *groups],
        [[run, *(f"{passes[g]:.1f}" for g in groups)] for run, passes in runs.items()],
    )


def loss_plot(result: Mapping[str, Any], path: Path) -> Path:
    """Mean training loss per planted group over the SFT steps, averaged over the seeds."""
    curves = [r["loss_by_group"] for r in result["seeds"]]
    series = {}
    for group in curves[0]:
        steps = sorted(curves[0][group], key=int)  # JSON keys come back sorted as text
        series[group] = (
            [int(s) for s in steps],
            [float(np.mean([c[group][s] for c in curves])) for s in steps],
        )
    return line_plot(
        series,
        path,
        title="SFT loss per planted group (mean over records and seeds)",
        xlabel="step",
        ylabel="loss (nats/token)",
    )


def loss_table(result: Mapping[str, Any]) -> str:
    """The last two recorded steps' loss per group (mean over seeds): the plateau check."""
    curves = [r["loss_by_group"] for r in result["seeds"]]
    steps = sorted(next(iter(curves[0].values())), key=int)
    last, before = steps[-1], steps[-2]
    return table(
        ["group", f"loss at step {before}", f"loss at step {last}"],
        [
            [
                group,
                pm([c[group][before] for c in curves]),
                pm([c[group][last] for c in curves]),
            ]
            for group in curves[0]
        ],
    )


def signal_table(result: Mapping[str, Any]) -> str:
    """Per planted group, over the analysed (unlearned) records of every seed: the range of the
    base's MCQ confidence and of its fact-probe belief against the label (C1 vs C2)."""
    by_group: dict[str, dict[str, list[float]]] = {}
    for seed in result["seeds"]:
        for row in seed["rows"]:
            if row.get("analysed"):
                group = by_group.setdefault(seed["planted"][row["id"]], {"mcq": [], "belief": []})
                group["mcq"].append(row["signals"]["base_confidence"])
                if row["signals"].get("belief_against_label") is not None:
                    group["belief"].append(row["signals"]["belief_against_label"])

    def span(values: list[float]) -> str:
        return f"{min(values):.2f}–{max(values):.2f}" if values else "n/a (no 1-hop fact)"

    return table(
        ["planted", "unlearned records", "base MCQ confidence", "fact-probe belief against label"],
        [
            [g, len(v["mcq"]), span(v["mcq"]), span(v["belief"])]
            for g, v in sorted(by_group.items())
        ],
    )


def world_section(result: Mapping[str, Any], world: str) -> str:
    summary = result["aggregate"]
    return "\n".join(
        [
            world_line(result),
            "",
            f"![SFT loss per group](img/ilp_smollm2_{world}_loss.png)",
            "",
            f"**Training loss at the last two checkpoints** (per planted group, {SPREAD_NOTE}):",
            "",
            loss_table(result),
            "",
            report.benchmark_tables(summary, (TARGET,)),
            "",
            "**Signals behind C1 vs C2** (range over the unlearned records of every seed):",
            "",
            signal_table(result),
            "",
            "**Exposure**: times the schedule shows a record of each planted group (mean over the "
            "group and the seeds; copies included). The CPT runs (X1, X2, ctrl_cpt) train on the "
            "plain SFT schedule.",
            "",
            exposure_table(summary),
        ]
    )


def plateau_section(result: Mapping[str, Any]) -> str:
    """The recipe check: unlearned rate per planted group after SFT to a flat training loss."""
    rates = result["aggregate"]["unlearned_rate_by_planted"]
    return "\n".join(
        [
            world_line(result) + f" Seeds {result['aggregate']['seeds']}.",
            "",
            table(["group", "unlearned rate"], [[g, f"{v['mean']:.2f}"] for g, v in rates.items()]),
            "",
            f"Training loss per planted group ({SPREAD_NOTE}):",
            "",
            loss_table(result),
        ]
    )


def calibration_section(calibration: Mapping[str, Any]) -> str:
    default, chosen = calibration["dev_macro_f1_default"], calibration["dev_macro_f1_chosen"]
    rows = [
        [name, str(values[0]), str(calibration["chosen"][name]), ", ".join(map(str, values))]
        for name, values in calibration["grid"].items()
    ]
    return "\n".join(
        [
            f"{len(calibration['scores'])} rule sets re-attributed on the dev world's stored "
            "signals (no model run); the one with the highest mean dev macro-F1 is kept "
            "(ties: the earlier in grid order, defaults first). Chosen on dev only, committed "
            "before any held-out result existed.",
            "",
            table(["rule", "default", "chosen", "grid"], rows),
            "",
            f"Dev macro-F1 with the default rules {pm(default)} (95 % CI {mean_ci(default)}), "
            f"with the chosen rules {pm(chosen)} (95 % CI {mean_ci(chosen)}); per seed "
            f"{[round(v, 2) for v in chosen]}. This is the fit on the data it was chosen on; "
            "the held-out section below is the estimate.",
        ]
    )


def heldout_verdict(summary: Mapping[str, Any]) -> str:
    per_seed = summary["macro_f1"]["per_seed"]
    interval = mean_ci(per_seed)
    return (
        f"Held-out macro-F1 {pm(per_seed)} (95 % CI {interval}); target ≥ {TARGET}: "
        f"**{threshold_verdict(interval, TARGET)}**."
    )


def pooled_heldout_section(first: Mapping[str, Any], more: Mapping[str, Any]) -> str:
    """The preregistered second look: held-out seeds 3-5 beside 0-2, the verdict on all six."""
    pooled = benchmark.aggregate([*first["seeds"], *more["seeds"]])
    added = more["aggregate"]["macro_f1"]["per_seed"]
    return "\n".join(
        [
            "Preregistered in `ilp_smollm2/heldout_more_seeds_preregistration.json` after the "
            "3-seed result above and before these runs: seeds 3-5 with the calibrated rules "
            "unchanged, the verdict on the 6-seed pool, no further seeds whatever came out.",
            "",
            f"Seeds 3-5 alone: macro-F1 {pm(added)} (95 % CI {mean_ci(added)}; per seed "
            f"{[round(v, 2) for v in added]}).",
            "",
            heldout_verdict(pooled),
            "",
            report.benchmark_tables(pooled, (TARGET,)),
        ]
    )


def write_sections(out: Path = DOCS / "ilp_smollm2") -> None:
    """Every section whose results exist; the page is docs/results/ilp.md next to `out`."""
    doc, img = out.parent / report.DOC, out.parent / "img"
    for world in ("dev", "heldout", "interventions"):
        if (out / f"{world}.json").is_file():
            result = read_json(out / f"{world}.json")
            report.benchmark_plots(img, result["aggregate"], f"_smollm2_{world}")
            loss_plot(result, img / f"ilp_smollm2_{world}_loss.png")
            body = world_section(result, world)
            if world == "heldout":
                body = heldout_verdict(result["aggregate"]) + "\n\n" + body
            replace_section(doc, f"smollm2-{world}", body)
    if (out / "heldout.json").is_file() and (out / "heldout_more_seeds.json").is_file():
        body = pooled_heldout_section(
            read_json(out / "heldout.json"), read_json(out / "heldout_more_seeds.json")
        )
        replace_section(doc, "smollm2-heldout-six-seeds", body)
    if (out / "dev_plateau.json").is_file():
        replace_section(
            doc, "smollm2-plateau", plateau_section(read_json(out / "dev_plateau.json"))
        )
    if (out / "calibration.json").is_file():
        replace_section(
            doc, "smollm2-calibration", calibration_section(read_json(out / "calibration.json"))
        )
