"""The SmolLM2 benchmark's sections of docs/results/ilp.md, from docs/results/ilp_smollm2/*.json:
`smollm2-dev` (default rules), `smollm2-calibration` (rules chosen on dev) and `smollm2-heldout`
(the calibrated rules on the held-out world, with the interventions)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from components.common.io import read_json
from experiments.ilp import report
from experiments.report import pm, replace_section, table
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


def world_section(result: Mapping[str, Any]) -> str:
    summary = result["aggregate"]
    return "\n".join(
        [
            world_line(result),
            "",
            report.benchmark_tables(summary, (TARGET,)),
            "",
            "**Exposure**: times the schedule shows a record of each planted group (mean over the "
            "group and the seeds; copies included). The CPT runs (X1, X2, ctrl_cpt) train on the "
            "plain SFT schedule.",
            "",
            exposure_table(summary),
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
            "before the held-out world was run.",
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


def write_sections(out: Path = DOCS / "ilp_smollm2") -> None:
    """Every section whose results exist; the page is docs/results/ilp.md next to `out`."""
    doc, img = out.parent / report.DOC, out.parent / "img"
    for world in ("dev", "heldout"):
        if (out / f"{world}.json").is_file():
            result = read_json(out / f"{world}.json")
            report.benchmark_plots(img, result["aggregate"], f"_smollm2_{world}")
            body = world_section(result)
            if world == "heldout":
                body = heldout_verdict(result["aggregate"]) + "\n\n" + body
            replace_section(doc, f"smollm2-{world}", body)
    if (out / "calibration.json").is_file():
        replace_section(
            doc, "smollm2-calibration", calibration_section(read_json(out / "calibration.json"))
        )
