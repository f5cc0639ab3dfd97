"""docs/results/rlhb.md, every number computed from docs/results/rlhb/*.json:

python -m experiments.rlhb.benchmark report"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import spearmanr

from components.common.io import read_json
from components.common.plots import grouped_bar_plot, line_plot
from experiments.report import SPREAD_NOTE, mean_std, pm, table
from experiments.rlhb.benchmark import ARMS, world_bounds
from experiments.stats import mean_ci, paired_difference_ci, threshold_verdict

PAGE = "rlhb.md"
GAIN = 1.10  # preregistered (the spec's): RLHB's u / SFT's u >= 1.10
NON_INFERIORITY = -0.05  # preregistered: u(RLHB) - u(RLHF) > -0.05
SPEARMAN = 0.8  # preregistered (the spec's)
COLLAPSE = 0.95  # preregistered (the spec's): D's mean output on generations
OVERFIT = 0.9  # preregistered: D's held-out accuracy at the end
LAST = 280  # "the last 20 iterations" of 300 (histories keep every 5th)
CURVE_ARMS = ("rlhb", "no_bootstrap", "rho_0.5", "rollouts_1", "no_conditioning")


def normalised(score: float) -> float:
    low, high = world_bounds()
    return (score - low) / (high - low)


def u(seeds: Sequence[dict], arm: str, key: str = "score") -> list[float]:
    return [normalised(s["arms"][arm][key]) for s in seeds]


def spearman(levels: dict[str, float]) -> float:
    keys = sorted(levels, key=int)
    return float(spearmanr([int(k) for k in keys], [levels[k] for k in keys]).statistic)


def late_mean(history: list[dict], key: str) -> float:
    values = [row[key] for row in history if row["iteration"] > LAST and key in row]
    return float(np.mean(values)) if values else float("nan")


def final(history: list[dict], key: str) -> float:
    values = [row[key] for row in history if key in row]
    return float(values[-1]) if values else float("nan")


def phenomenon_section(result: dict[str, Any]) -> str:
    seeds = result["seeds"]
    accuracy = mean_ci([s["d_warmup_accuracy"] for s in seeds])
    sft = mean_ci(u(seeds, "sft"))
    carried = accuracy.low > 0.5
    headroom = sft.high < 0.9
    rows = [
        (
            "(a) D's held-out accuracy after warm-up (real vs shuffled behaviour), above 0.5",
            pm([s["d_warmup_accuracy"] for s in seeds], 3),
            accuracy.format(3),
            "shown" if carried else "not shown",
        ),
        (
            "(b) SFT's normalised utility u under b*, below 0.9",
            pm(u(seeds, "sft"), 3),
            sft.format(3),
            "shown" if headroom else "not shown",
        ),
    ]
    return "\n".join(
        [
            f"Seeds {', '.join(str(s['seed']) for s in seeds)}; {SPREAD_NOTE}; 95 % t intervals.",
            "",
            table(("phenomenon", "mean ± std", "95 % CI", ""), rows),
        ]
    )


def claim_rows(seeds: Sequence[dict]) -> list[tuple[str, str, str]]:
    rlhb = u(seeds, "rlhb")
    ratio = mean_ci([r / s for r, s in zip(rlhb, u(seeds, "sft"), strict=True)])
    rows = [("V1. u(RLHB) / u(SFT) >= 1.10", ratio.format(3), threshold_verdict(ratio, GAIN))]
    for rival, name in (("rlhf", "pairwise RLHF"), ("rlhbc", "RLHBC")):
        gap = paired_difference_ci(rlhb, u(seeds, rival))
        verdict = threshold_verdict(gap, NON_INFERIORITY)
        rows.append((f"V1. u(RLHB) - u({name}) > -0.05", gap.format(3), verdict))
    strongest = max(("rlhf", "rlhbc"), key=lambda arm: mean_std(u(seeds, arm))[0])
    gap = paired_difference_ci(rlhb, u(seeds, strongest))
    rows.append(
        (
            f"V1. u(RLHB) - u({strongest}) (the strongest baseline) >= 0",
            gap.format(3),
            threshold_verdict(gap, 0),
        )
    )
    for arm in ("rlhb", "sft"):
        interval = mean_ci([spearman(s["arms"][arm]["like_levels"]) for s in seeds])
        verdict = "supported" if interval.estimate >= SPEARMAN else "not shown"
        name = "RLHB" if arm == "rlhb" else "SFT, for reference"
        rows.append(
            (f"V2. Spearman(like level, true score) >= 0.8, {name}", interval.format(3), verdict)
        )
    for arm, rho in (("rho_0.5", "0.5"), ("rlhb", "0.1"), ("no_bootstrap", "0")):
        outputs = [late_mean(s["histories"][arm], "d_prob_generated") for s in seeds]
        collapsed = all(o >= COLLAPSE for o in outputs)
        expected = arm == "rho_0.5"
        verdict = "supported" if collapsed == expected else "contradicted"
        rows.append(
            (
                f"V3. rho = {rho}: D's output on generations {'>=' if expected else '<'} 0.95",
                ", ".join(f"{o:.3f}" for o in outputs),
                verdict,
            )
        )
    accuracy = [final(s["histories"]["no_bootstrap"], "d_accuracy") for s in seeds]
    gap = paired_difference_ci(u(seeds, "no_bootstrap"), rlhb)
    overfit = all(a >= OVERFIT for a in accuracy)
    collapsed = gap.high < 0
    rows.append(
        (
            "V3. no bootstrap: D over-fits (final held-out accuracy >= 0.9) or u drops",
            f"accuracy {', '.join(f'{a:.3f}' for a in accuracy)}; u gap {gap.format(3)}",
            "supported" if overfit or collapsed else "not shown",
        )
    )
    noise = [
        (s["arms"]["rollouts_1"]["return_noise"], s["arms"]["rlhb"]["return_noise"]) for s in seeds
    ]
    rows.append(
        (
            "V3. return noise n = 1 > n = 4, every seed",
            "; ".join(f"{a:.3f} vs {b:.3f}" for a, b in noise),
            "supported" if all(a > b for a, b in noise) else "not shown",
        )
    )
    gap = paired_difference_ci(rlhb, u(seeds, "no_conditioning"))
    rows.append(
        ("ablation: u(RLHB) - u(no conditioning)", gap.format(3), threshold_verdict(gap, 0))
    )
    return rows


def findings(seeds: Sequence[dict]) -> str:
    """What the numbers say, each number computed here."""

    def mean(arm: str, key: str) -> float:
        return mean_std([s["arms"][arm][key] for s in seeds])[0]

    def mean_u(arm: str) -> str:
        return f"{mean_std(u(seeds, arm))[0]:.3f}"

    def gain(arm: str) -> str:
        return paired_difference_ci(u(seeds, arm), u(seeds, "sft")).format(3)

    d_accuracy = mean_std([final(s["histories"]["rlhb"], "d_accuracy") for s in seeds])[0]
    d_output = {
        arm: mean_std([late_mean(s["histories"][arm], "d_prob_generated") for s in seeds])[0]
        for arm in ("rlhb", "rho_0.5")
    }
    lengths = {arm: f"{mean(arm, 'length_ok_share'):.2f}" for arm in ("sft", "rlhb", "rlhbc")}
    return "\n".join(
        [
            "### What came out",
            "",
            f"- **RLHB did not raise the hidden utility over SFT** (u {mean_u('rlhb')} against "
            f"{mean_u('sft')}; RLHB - SFT {gain('rlhb')}). RL on fixed rewards learned from the "
            f"same logs did better: RLHBC - SFT {gain('rlhbc')}, pairwise RLHF - SFT "
            f"{gain('rlhf')} (intervals above 0 mean a gain shown). RLHBC's gain is the length: "
            "answers of 8-16 words "
            f"{lengths['rlhbc']} of the time against SFT's {lengths['sft']} and RLHB's "
            f"{lengths['rlhb']}.",
            f"- **The discriminator stays a weak judge.** Its held-out accuracy (real against "
            f"behaviour-shuffled logs) ends at {d_accuracy:.3f} on average: the behaviour is "
            "noisy (Poisson counts, an unlogged position), so whether a behaviour fits an answer "
            "is often undecidable, and D's logit is a noisy reward.",
            f"- **No collapse at rho = 0.5**: D's mean output on generations over the last 20 "
            f"iterations is {d_output['rho_0.5']:.3f} (rho = 0.1: {d_output['rlhb']:.3f}), far "
            "from the 0.95 the paper's notes describe; without bootstrapping D does not over-fit "
            "either. A D that never wins has nothing to collapse from.",
            "- **Conditioning does the steering**: the like level in the prompt orders the "
            "answers' utility perfectly already after SFT (V2 holds for SFT as for RLHB). "
            f"Without the behaviour text u is {mean_u('no_conditioning')}, but with 3 seeds "
            "the difference's interval includes 0.",
            "- The never-logged template stays far lower for every arm (a phrasing no arm was "
            "trained on).",
        ]
    )


def arm_table(seeds: Sequence[dict]) -> str:
    rows = [
        (
            arm,
            pm([s["arms"][arm]["score"] for s in seeds], 3),
            pm(u(seeds, arm), 3),
            pm(u(seeds, arm, "score_unseen"), 3),
            pm([s["arms"][arm]["topic_share"] for s in seeds], 2),
            pm([s["arms"][arm]["length_ok_share"] for s in seeds], 2),
            pm([s["arms"][arm]["repetition_share"] for s in seeds], 2),
        )
        for arm in ARMS
    ]
    header = (
        "arm",
        "true score",
        "u (logged queries)",
        "u (never-logged template)",
        "topic word",
        "length 8-16",
        "repetition",
    )
    return table(header, rows)


def mean_curve(seeds: Sequence[dict], arm: str, key: str) -> tuple[list[float], list[float]]:
    rows = [[r for r in s["histories"][arm] if key in r] for s in seeds]
    length = min(len(r) for r in rows)
    xs = [r["iteration"] for r in rows[0][:length]]
    return xs, [float(np.mean([r[i][key] for r in rows])) for i in range(length)]


def pictures(seeds: Sequence[dict], img: Path) -> list[str]:
    lines = []
    for key, ylabel, arms in (
        ("reward", "mean clipped reward", (*CURVE_ARMS, "rlhbc", "rlhf")),
        ("d_prob_generated", "D's mean output on generations", CURVE_ARMS),
        ("d_accuracy", "D's held-out accuracy (real vs shuffled)", CURVE_ARMS),
        (
            "true_score_b_star",
            "hidden utility of b* rollouts (monitor)",
            (*CURVE_ARMS, "rlhbc", "rlhf"),
        ),
    ):
        line_plot(
            {arm: mean_curve(seeds, arm, key) for arm in arms},
            img / f"rlhb_{key}.png",
            title=f"{key}, mean over seeds",
            xlabel="RL iteration",
            ylabel=ylabel,
        )
        lines.append(f"![{key}](img/rlhb_{key}.png)")
    levels = {
        arm: (
            [1, 2, 3, 4, 5],
            [
                normalised(float(np.mean([s["arms"][arm]["like_levels"][str(k)] for s in seeds])))
                for k in range(1, 6)
            ],
        )
        for arm in ("sft", "rlhb")
    }
    line_plot(
        levels,
        img / "rlhb_like_levels.png",
        title="Conditioned like level against realised utility (V2)",
        xlabel="likes level in the prompt (dislikes 6 - level)",
        ylabel="u, mean over seeds",
    )
    lines.append("![like levels](img/rlhb_like_levels.png)")
    causes = {
        cause: {arm: mean_std([s["arms"][arm][f"{cause}_share"] for s in seeds]) for arm in ARMS}
        for cause in ("topic", "length_ok", "repetition")
    }
    grouped_bar_plot(
        causes,
        img / "rlhb_causes.png",
        title="The hidden utility's causes in each arm's answers under b*",
        ylabel="share of answers",
    )
    lines.append("![causes](img/rlhb_causes.png)")
    return lines


HEADER = """# RLHB: results

Regenerate this page: `python -m experiments.rlhb.benchmark report`.

Code: `experiments/rlhb/benchmark.py` (the arms of `components/rlhb` trained in-process) and this
page's generator `experiments/rlhb/report.py`; the preregistration is
`docs/results/rlhb/preregistration.json`, committed before any benchmark run.

The world (the spec's tiny CPU validation): a simulated search service, 30 topics x 5 query
templates (the last never logged), a logging policy answering with good, mediocre and bad
templated responses, and users whose hidden utility (topic word present, 8-16 words, no repeated
word) drives Poisson likes and dislikes, with Poisson views and binomial clicks and an unlogged
position that scales them all (noise). 20,000 logged triplets per seed. The generator is the
project's tiny Llama (2 layers, 128 wide) on a word vocabulary, SFT'd on the logs with the
behaviour text in the prompt, then 300 RL iterations (16 prompts x 4 rollouts, RLOO, KL 0.05 to
the SFT policy). `u` normalises the true score between the worst response (0) and the best (1).
"""


REAL_HEADER = """## 3. The real-model lane: SmolLM2-135M-Instruct with LoRA

Code: `experiments/rlhb/real_model.py`; preregistration
`docs/results/rlhb/real/preregistration.json`, committed before any run of the lane. The same
product code (`components.rlhb.arms`, profile `smollm2`, LoRA r 8 on the attention projections)
on the same simulator, sized for 2 CPU cores:
2,000 logs, 40 LoRA SFT steps of 8, 300 discriminator warm-up steps, 15 RL iterations of 8 prompts
x 4 rollouts at lr 1e-4, 40 logged queries x 2 answers under b* (the measured time is in the
config's docstring). At this size the lane shows whether the pipeline runs on a pretrained chat
model and what SFT makes of it; 15 RL iterations say nothing about longer runs.
"""


def real_section(out: Path) -> list[str]:
    parts = [REAL_HEADER]
    phenomenon, compare = out / "real/phenomenon.json", out / "real/compare.json"
    if phenomenon.is_file():
        parts += [phenomenon_section(read_json(phenomenon)), ""]
    if compare.is_file():
        seeds = read_json(compare)["seeds"]
        rows = [
            (
                arm,
                pm([s["arms"][arm]["score"] for s in seeds], 3),
                pm(u(seeds, arm), 3),
                pm(u(seeds, arm, "score_unseen"), 3),
                pm([s["arms"][arm]["topic_share"] for s in seeds], 2),
                pm([s["arms"][arm]["length_ok_share"] for s in seeds], 2),
                pm([s["arms"][arm]["repetition_share"] for s in seeds], 2),
            )
            for arm in ("sft", "rlhb")
        ]
        header = ("arm", "true score", "u (logged)", "u (never-logged)", "topic", "length", "rep.")
        ratio = mean_ci([r / f for r, f in zip(u(seeds, "rlhb"), u(seeds, "sft"), strict=True)])
        examples = seeds[0]["arms"]["rlhb"]["examples"][:2]
        parts += [
            f"Seeds {', '.join(str(s['seed']) for s in seeds)}; {SPREAD_NOTE}.",
            "",
            table(header, rows),
            "",
            f"V1. u(RLHB) / u(SFT) >= 1.10: {ratio.format(3)}, "
            f"**{threshold_verdict(ratio, GAIN)}**.",
            "",
            "RLHB's answers (seed 0): " + "; ".join(f"`{e}`" for e in examples),
            "",
        ]
    return parts


def write_report(out: Path) -> None:
    img = out.parent / "img"
    img.mkdir(parents=True, exist_ok=True)
    parts = [HEADER, "## 1. Does the benchmark contain the phenomenon?", ""]
    phenomenon = out / "phenomenon.json"
    if phenomenon.is_file():
        parts += [phenomenon_section(read_json(phenomenon)), ""]
    compare = out / "compare.json"
    if compare.is_file():
        seeds = read_json(compare)["seeds"]
        parts += [
            "## 2. The comparison",
            "",
            f"Seeds {', '.join(str(s['seed']) for s in seeds)}; {SPREAD_NOTE}; 95 % t "
            "intervals (paired over seeds for differences).",
            "",
            "### Claims (preregistered)",
            "",
            table(("claim", "estimate [95 % CI] or per seed", "verdict"), claim_rows(seeds)),
            "",
            findings(seeds),
            "",
            "### Every arm under b*",
            "",
            arm_table(seeds),
            "",
            *pictures(seeds, img),
            "",
        ]
    if (out / "real/preregistration.json").is_file():
        parts += real_section(out)
    (out.parent / PAGE).write_text("\n".join(parts).rstrip() + "\n", encoding="utf-8")
