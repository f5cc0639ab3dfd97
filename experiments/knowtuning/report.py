"""docs/results/knowtuning.md, every number computed from docs/results/knowtuning/*.json:

python -m experiments.knowtuning.benchmark report"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from components.common.io import read_json
from components.common.plots import grouped_bar_plot
from experiments.knowtuning.benchmark import ARMS
from experiments.report import SPREAD_NOTE, mean_std, pm, table
from experiments.stats import equivalence_verdict, mean_ci, paired_difference_ci

PAGE = "knowtuning.md"
METRICS = ("completeness", "correct_facts", "error_rate", "logicality", "kendall_tau")
# the three aspects as "higher is better" numbers (factuality = 1 - error rate)
ASPECT_METRICS = {
    "completeness": "completeness",
    "factuality": "error_rate",
    "logicality": "logicality",
}
TOST_MARGIN = 0.05  # preregistered: KnowTuning vs FactTune-like on factuality
GAIN_THRESHOLD = 0.03  # preregistered (the spec's): gains of at least 3 points in two aspects


def arm_value(seed: dict[str, Any], arm: str, split: str, metric: str) -> float:
    value = seed["arms"][arm][split]["mean"].get(metric)
    return math.nan if value is None else float(value)


def aspect_value(seed: dict[str, Any], arm: str, split: str, aspect: str) -> float:
    """An aspect as higher-is-better: factuality is 1 - error rate."""
    value = arm_value(seed, arm, split, ASPECT_METRICS[aspect])
    return 1.0 - value if aspect == "factuality" else value


def knowledge_score(seed: dict[str, Any], arm: str, split: str = "test") -> float:
    aspects = ("completeness", "factuality")
    return sum(aspect_value(seed, arm, split, a) for a in aspects) / 2


def diffs(seeds: Sequence[dict], a: str, b: str, split: str, aspect: str) -> list[float]:
    return [aspect_value(s, a, split, aspect) - aspect_value(s, b, split, aspect) for s in seeds]


def phenomenon(result: dict[str, Any]) -> dict[str, Any]:
    """Per seed: the base's cloze-known share of the held-out facts minus SFT's completeness."""
    seeds = result["seeds"]
    known = [sum(s["base_known"]) / len(s["base_known"]) for s in seeds]
    completeness = [arm_value(s, "sft", "test", "completeness") for s in seeds]
    gap = [k - c for k, c in zip(known, completeness, strict=True)]
    interval = mean_ci(gap)
    return {
        "known": known,
        "completeness": completeness,
        "error_rate": [arm_value(s, "sft", "test", "error_rate") for s in seeds],
        "gap": gap,
        "interval": interval,
        "shown": interval.low > 0,
    }


def phenomenon_verdict(p: dict[str, Any]) -> str:
    if p["shown"]:
        return (
            "**Phenomenon shown**: SFT leaves out facts the base knows (the gap's interval lies "
            "wholly above 0)."
        )
    if p["interval"].high < 0:
        return (
            "**Phenomenon not shown**, the reverse holds: SFT states more of the held-out facts "
            "than the base completes by cloze (the gap's interval lies wholly below 0)."
        )
    return "**Phenomenon not shown**: the gap's interval is not wholly above 0."


def phenomenon_section(result: dict[str, Any], drawn: str = "their own worlds") -> str:
    p = phenomenon(result)
    seeds = [s["seed"] for s in result["seeds"]]
    return "\n".join(
        [
            f"Seeds {seeds} ({drawn}), base and vanilla SFT only; {SPREAD_NOTE}.",
            "",
            table(
                ["", "value"],
                [
                    ["held-out facts the base completes by cloze", pm(p["known"])],
                    ["SFT completeness on the same answers", pm(p["completeness"])],
                    ["SFT error rate", pm(p["error_rate"])],
                    ["gap (known − stated)", f"{pm(p['gap'])} (95 % CI {p['interval']})"],
                ],
            ),
            "",
            phenomenon_verdict(p),
        ]
    )


def arm_table(seeds: Sequence[dict], split: str, arms: Sequence[str] = ARMS) -> str:
    rows = []
    for arm in arms:
        rows.append([arm, *(pm([arm_value(s, arm, split, m) for s in seeds]) for m in METRICS)])
    return table(["arm", *METRICS], rows)


def strongest_baseline(seeds: Sequence[dict]) -> str:
    """The non-KnowTuning arm with the highest mean knowledge score on test (preregistered)."""
    baselines = [a for a in ARMS if a != "knowtuning" and not a.startswith("kt_no_")]
    return max(baselines, key=lambda a: mean_std([knowledge_score(s, a) for s in seeds])[0])


def claim_rows(
    seeds: Sequence[dict], against: str, split: str, aspects: Sequence[str] = tuple(ASPECT_METRICS)
) -> list[list[str]]:
    rows = []
    for aspect in aspects:
        d = diffs(seeds, "knowtuning", against, split, aspect)
        interval = paired_difference_ci(
            [aspect_value(s, "knowtuning", split, aspect) for s in seeds],
            [aspect_value(s, against, split, aspect) for s in seeds],
        )
        verdict = (
            "yes" if interval.low > 0 else ("no (worse)" if interval.high < 0 else "not shown")
        )
        rows.append([f"KT − {against}, {split}: {aspect}", pm(d), str(interval), verdict])
    return rows


def headline_verdicts(seeds: Sequence[dict]) -> list[str]:
    """Claims 1 and 2 of the preregistration, and a TOST of every aspect against SFT."""
    shown = {}
    gains = {}
    for aspect in ASPECT_METRICS:
        d = diffs(seeds, "knowtuning", "sft", "test", aspect)
        shown[aspect] = mean_ci(d).low > 0
        gains[aspect] = mean_std(d)[0]
    big = sum(g >= GAIN_THRESHOLD for g in gains.values() if g == g)
    claim1 = "supported" if all(shown.values()) and big >= 2 else "not shown"
    correct = diffs_metric(seeds, "knowtuning", "sft", "correct_facts")
    errors = diffs_metric(seeds, "knowtuning", "sft", "error_rate")
    claim2 = "supported" if mean_ci(correct).low > 0 and mean_ci(errors).high < 0 else "not shown"
    tost = {
        a: equivalence_verdict(diffs(seeds, "knowtuning", "sft", "test", a), TOST_MARGIN)
        for a in ASPECT_METRICS
    }
    return [
        f"- **Claim 1** (KT beats SFT on all three aspects, gains ≥ {GAIN_THRESHOLD} in two): "
        f"**{claim1}** (intervals above 0: "
        + ", ".join(f"{a} {'yes' if v else 'no'}" for a, v in shown.items())
        + f"; gains ≥ {GAIN_THRESHOLD}: {big} of 3).",
        f"- **Claim 2** (more correct facts and a lower error rate): **{claim2}** (correct facts "
        f"{pm(correct)}, 95 % CI {mean_ci(correct)}; error rate {pm(errors)}, 95 % CI "
        f"{mean_ci(errors)}).",
        f"- **No difference?** TOST of KT − SFT within ±{TOST_MARGIN} (not preregistered; the "
        "margin is the FactTune claim's): "
        + ", ".join(f"{a} **{v}**" for a, v in tost.items())
        + ".",
    ]


def diffs_metric(seeds: Sequence[dict], a: str, b: str, metric: str) -> list[float]:
    return [arm_value(s, a, "test", metric) - arm_value(s, b, "test", metric) for s in seeds]


def ablation_table(seeds: Sequence[dict]) -> str:
    rows = []
    for aspect in ASPECT_METRICS:
        arm = f"kt_no_{aspect}"
        rows.append(
            [arm, *(pm(diffs(seeds, "knowtuning", arm, "test", a)) for a in ASPECT_METRICS)]
        )
    return table(["KnowTuning − ablation", *ASPECT_METRICS], rows)


def compare_section(result: dict[str, Any], img: Path) -> str:
    seeds = result["seeds"]
    strongest = strongest_baseline(seeds)
    plot = {
        aspect: {
            arm: mean_std([aspect_value(s, arm, "test", aspect) for s in seeds]) for arm in ARMS
        }
        for aspect in ASPECT_METRICS
    }
    grouped_bar_plot(
        plot, img / "knowtuning_aspects.png", title="Held-out answers per arm", ylabel="score"
    )
    facttune = [
        aspect_value(s, "knowtuning", "test", "factuality")
        - aspect_value(s, "facttune", "test", "factuality")
        for s in seeds
    ]
    claims = claim_rows(seeds, "sft", "test")
    if strongest != "sft":
        claims += claim_rows(seeds, strongest, "test")
    claims += claim_rows(seeds, "sft", "test_unseen")
    return "\n".join(
        [
            f"Seeds {[s['seed'] for s in seeds]}; {SPREAD_NOTE}; intervals: the 95 % paired t "
            "interval of per-seed differences (`experiments.stats`). Factuality is 1 − error "
            "rate; logicality averages the answers that state two linked facts.",
            "",
            "![aspects per arm](img/knowtuning_aspects.png)",
            "",
            "**Held-out entities (test)**",
            "",
            arm_table(seeds, "test"),
            "",
            "**Held-out entities, unseen question phrasings (test_unseen)**",
            "",
            arm_table(seeds, "test_unseen"),
            "",
            f"**Claims** (strongest baseline by knowledge score: `{strongest}`)",
            "",
            *headline_verdicts(seeds),
            "",
            table(["claim", "mean ± std", "95 % CI", "shown"], claims),
            "",
            f"KnowTuning − FactTune-like on factuality: {pm(facttune)}, TOST within "
            f"±{TOST_MARGIN}: **{equivalence_verdict(facttune, TOST_MARGIN)}**.",
            "",
            "**Ablations** (each row: what KnowTuning loses without that aspect's pairs; "
            "positive = the pairs helped)",
            "",
            ablation_table(seeds),
        ]
    )


def what_it_shows(phen: dict[str, Any], comp: dict[str, Any]) -> str:
    """The reading of both sections, every number computed here."""
    p, seeds = phenomenon(phen), comp["seeds"]
    completeness = diffs(seeds, "knowtuning", "sft", "test", "completeness")
    factuality = diffs(seeds, "knowtuning", "sft", "test", "factuality")
    defined = sum(math.isfinite(arm_value(s, "knowtuning", "test", "logicality")) for s in seeds)
    return "\n".join(
        [
            f"- **The benchmark has the phenomenon, in its extreme form.** The base completes "
            f"{pm(p['known'])} of the held-out facts by cloze, SFT states {pm(p['completeness'])} "
            "of them: SFT writes fluent five-fact chains, but mostly another entity's chain.",
            f"- **KnowTuning does not change it.** KT − SFT on held-out answers: completeness "
            f"{pm(completeness)} (95 % CI {mean_ci(completeness)}), factuality {pm(factuality)} "
            f"(95 % CI {mean_ci(factuality)}); within ±{TOST_MARGIN} of SFT on both by TOST (a "
            "margin we did not preregister). No arm, ablation or the FactTune-like baseline moves "
            "off the floor either, so the ablations cannot show aspect specificity. Logicality "
            f"is defined for KnowTuning on {defined} of {len(seeds)} seeds (an answer needs two "
            "linked facts right).",
            "- **Why, as far as we can tell:** the failure is retrieving an unseen entity's first "
            "fact from its name; every later fact follows from the first (each names the "
            "previous value), so a wrong first fact sends the answer down another entity's "
            "chain. KA's pairs and KC's negatives are built on the training entities, so "
            "neither gives a signal about retrieving held-out entities. The paper's setting, a "
            "pretrained LLM answering about things it can retrieve, is the SmolLM2 lane's "
            "(section 3).",
        ]
    )


def smollm2_section(lane: Path, img: Path) -> str:
    """The real-model lane (experiments.knowtuning.smollm2_lane): its phenomenon check, its arms
    per split, KnowTuning against SFT, KA alone and KC alone, and the reading."""
    from experiments.knowtuning.smollm2_lane import ARMS as LANE_ARMS
    from experiments.knowtuning.smollm2_lane import LaneConfig

    cfg = LaneConfig()
    parts = [
        "SmolLM2-135M-Instruct with LoRA (r 16 on q/v, the paper's recipe) on 40 real countries, "
        "four facts each (continent, capital, official language, currency), through the "
        "product's user-data path: facts matched as sentences, KA's questions and KC's "
        "falsified facts written by the base model. Each seed draws its own 30/10 split. "
        f"Budget on 2 CPU cores: SFT {cfg.sft_steps} steps (batch {cfg.sft_batch_size}, lr "
        f"{cfg.sft_learning_rate}), DPO {cfg.dpo_steps} steps (batch {cfg.dpo_batch_size}, lr "
        f"{cfg.dpo_learning_rate}). The tiny lane's invented world was not used: SmolLM2 would "
        "first have to learn it by continued pretraining, per world and seed, beyond a CPU "
        "budget (the cost measured is in the lane's module docstring). Run: "
        "`python -m experiments.knowtuning.smollm2_lane phenomenon|compare`; preregistration "
        "`knowtuning/smollm2/preregistration.json`.",
        "",
    ]
    if (lane / "phenomenon.json").is_file():
        parts += ["**Does the lane contain the phenomenon?**", ""]
        phen = read_json(lane / "phenomenon.json")
        parts += [phenomenon_section(phen, "their own train/test splits"), ""]
    if not (lane / "compare.json").is_file():
        return "\n".join(parts)
    seeds = read_json(lane / "compare.json")["seeds"]
    aspects = ("completeness", "factuality")
    plot = {
        aspect: {
            arm: mean_std([aspect_value(s, arm, "test", aspect) for s in seeds])
            for arm in LANE_ARMS
        }
        for aspect in aspects
    }
    grouped_bar_plot(
        plot,
        img / "knowtuning_smollm2_aspects.png",
        title="SmolLM2, held-out countries per arm",
        ylabel="score",
    )
    claims = []
    for against in ("sft", "sft_ka", "sft_kc"):
        claims += claim_rows(seeds, against, "test", aspects)
    claims += claim_rows(seeds, "sft", "test_unseen", aspects)
    tost = {
        a: equivalence_verdict(diffs(seeds, "knowtuning", "sft", "test", a), TOST_MARGIN)
        for a in aspects
    }
    correct = diffs_metric(seeds, "knowtuning", "sft", "correct_facts")
    errors = diffs_metric(seeds, "knowtuning", "sft", "error_rate")
    parts += [
        f"**The comparison**: seeds {[s['seed'] for s in seeds]}; {SPREAD_NOTE}; paired t "
        "intervals of per-seed differences. Logicality here is the answer's own order (the "
        "four facts have no dependency chain).",
        "",
        "![SmolLM2 aspects per arm](img/knowtuning_smollm2_aspects.png)",
        "",
        "Held-out countries (test)",
        "",
        arm_table(seeds, "test", LANE_ARMS),
        "",
        "Held-out countries, unseen phrasings (test_unseen)",
        "",
        arm_table(seeds, "test_unseen", LANE_ARMS),
        "",
        table(["claim", "mean ± std", "95 % CI", "shown"], claims),
        "",
        f"Correct facts per answer, KT − SFT: {pm(correct)} (95 % CI {mean_ci(correct)}); error "
        f"rate {pm(errors)} (95 % CI {mean_ci(errors)}). TOST of KT − SFT within "
        f"±{TOST_MARGIN} (preregistered for this lane): "
        + ", ".join(f"{a} **{v}**" for a, v in tost.items())
        + ".",
        "",
        "**What the lane shows**",
        "",
        *lane_reading(read_json(lane / "phenomenon.json"), seeds),
        "",
    ]
    return "\n".join(parts)


def lane_reading(phen: dict[str, Any], seeds: Sequence[dict]) -> list[str]:
    """The SmolLM2 lane's reading, every number computed here."""
    from experiments.knowtuning.smollm2_lane import FACTS

    p = phenomenon(phen)
    sentences = {
        a: [arm_value(s, a, "test", "sentences") for s in seeds] for a in ("sft", "knowtuning")
    }
    errors = diffs_metric(seeds, "knowtuning", "sft", "error_rate")
    completeness = diffs(seeds, "knowtuning", "sft", "test", "completeness")
    lengths = [i["sentences"] for s in seeds for i in s["arms"]["knowtuning"]["test"]["items"]]
    run_on, answers = sum(n > len(FACTS) for n in lengths), len(lengths)
    return [
        f"- **No room for the claimed effect.** Vanilla SFT already states "
        f"{pm(p['completeness'])} of the held-out facts, more than the base completes by cloze "
        f"({pm(p['known'])}): the facts SmolLM2 knows, SFT's answers state, so there is no "
        "omitted knowledge for KA or KC to recover.",
        f"- **KnowTuning states no more facts and makes more errors.** Completeness KT − SFT "
        f"{pm(completeness)} (95 % CI {mean_ci(completeness)}, equivalent within ±{TOST_MARGIN}); "
        f"the error rate rises by {pm(errors)} (95 % CI {mean_ci(errors)}) because its answers "
        f"are longer ({pm(sentences['knowtuning'])} sentences against "
        f"{pm(sentences['sft'])}): {run_on} of {answers} held-out answers over the three seeds "
        f"run on past the {len(FACTS)} facts, none of SFT's do. The paper's claims are **not "
        "shown** on this lane either.",
        "- **The real-data path's weak link** is the base model as rewriter and falsifier: at "
        "135M parameters it writes poor questions for KA (some are statements) and its "
        '"falsified" answers often repeat or drop a fact instead of changing one '
        "(`pairs.jsonl` of each run); the paper used GPT-3.5 for both.",
    ]


HEADER = """# KnowTuning: results

Regenerate: `python -m experiments.knowtuning.benchmark report` (runs: `phenomenon`, `compare`;
the method: [docs/methods/knowtuning.md](../methods/knowtuning.md)). The preregistration,
committed before any run, is `knowtuning/preregistration.json`.

The benchmark is the entity world of `components/knowtuning/world.py` (tiny profile): 60 invented
entities whose five facts form a dependency chain, learnt by a tiny Llama from shuffled documents;
SFT teaches 45 entities' long answers ("Tell me about X."), and every arm is scored on 15
held-out entities whose facts exist only in the base's corpus.
"""


def write_report(out: Path) -> Path:
    img = out.parent / "img"
    parts = [HEADER]
    if (out / "phenomenon.json").is_file():
        parts += ["## 1. Does the benchmark contain the phenomenon?", ""]
        parts += [phenomenon_section(read_json(out / "phenomenon.json")), ""]
    if (out / "compare.json").is_file():
        parts += ["## 2. The comparison", ""]
        parts += [compare_section(read_json(out / "compare.json"), img), ""]
        if (out / "phenomenon.json").is_file():
            phen, comp = read_json(out / "phenomenon.json"), read_json(out / "compare.json")
            parts += ["## What it shows", "", what_it_shows(phen, comp), ""]
    if (out / "smollm2").is_dir():
        parts += ["## 3. Real-model lane: SmolLM2 on real facts", ""]
        parts += [smollm2_section(out / "smollm2", img), ""]
    page = out.parent / PAGE
    page.write_text("\n".join(parts), encoding="utf-8")
    return page
