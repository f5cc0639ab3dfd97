"""ILP's planted-cause benchmark on the real SmolLM2-135M-Instruct (LoRA SFT on CPU), with the
attribution rules calibrated on a dev world and scored on a held-out one:

    python -m experiments.ilp.smollm2_benchmark dev        # dev world: SFT + diagnosis, 3 seeds
    python -m experiments.ilp.smollm2_benchmark calibrate  # rules chosen on dev only
    python -m experiments.ilp.smollm2_benchmark heldout    # held-out world: SFT + diagnosis
    python -m experiments.ilp.smollm2_benchmark heldout-more   # held-out seeds 3 4 5 (prereg)
    python -m experiments.ilp.smollm2_benchmark interventions  # X1..X5 + controls on held-out
    python -m experiments.ilp.smollm2_benchmark report     # page sections from the JSONs

The world is `experiments.ilp.smollm2_world`; SFT, diagnosis and interventions are the tiny
benchmark's (`experiments.ilp.benchmark`) with the smollm2 profile. Results in
docs/results/ilp_smollm2/; the calibration is written (and committed) before held-out runs."""

from __future__ import annotations

import argparse
import itertools
import logging
import os
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from components.common.io import atomic_path, read_json, read_jsonl, write_json, write_jsonl
from components.common.models import materialize_smollm2
from components.common.params import LoraParams
from components.epi_finetune.params import FinetuneParams
from components.epi_finetune.step import plan_stages, schedule
from components.ilp_diagnosis import attribute, mitigate
from components.ilp_diagnosis.params import IlpParams, IlpRules
from components.ilp_diagnosis.report import ground_truth_report
from components.ilp_diagnosis.signals import read_dynamics
from components.pretrain.params import PretrainParams
from experiments.ilp import benchmark
from experiments.ilp.smollm2_world import (
    CORPUS_TEMPLATES,
    WorldSizes,
    general_corpus,
    planted_records,
    split_entities,
)
from experiments.world_facts import CAPITALS, base_knowledge

log = logging.getLogger(__name__)
REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "docs/results/ilp_smollm2"

# the calibration grid, defaults first: on a tie the earlier (closer to the defaults) point wins
GRID: dict[str, Sequence[Any]] = {
    "jsd_threshold": (0.1, None, 0.05, 0.2, 0.3),
    "base_confidence": (0.6, 0.4, 0.5, 0.7, 0.8),
    "c2_belief": (None, 0.3, 0.5, 0.6, 0.7, 0.8, 0.9),
    "c1_needs_low_jsd": (True, False),
    "learned_loss": (0.3, 0.6, 1.0, 1.5),
    "c2_test": ("mcq", "belief"),
}


# SmolLM2's chat template without its default system turn: half the tokens of a record
CHAT_TEMPLATE = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content']"
    " + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\n' }}{% endif %}"
)


# SFT budgets (LoRA r=8, batch 8, lr 2e-3 cosine), both chosen on dev seed 0 before any scored
# run. `plateau`: 96 steps in proportion to the stages, ~13 passes over every record, training
# loss flat (the spec's tiny validation) -- and then no stage-1 record stays unlearned.
# `epochs3` (the benchmark): the usual few epochs of SFT, 36 steps split evenly, so stage 0 (the
# C4 items) is seen ~14 times and stage 1 (everything else) ~3 times.
RECIPES: dict[str, dict[str, Any]] = {
    "plateau": {"max_steps": 96, "stage_steps": "proportional", "dynamics_every": 8},
    "epochs3": {"max_steps": 36, "stage_steps": "even", "dynamics_every": 4},
}


def config(
    seeds: Sequence[int], rules: IlpRules | None = None, recipe: str = "epochs3"
) -> benchmark.BenchmarkConfig:
    """The benchmark on SmolLM2, CPU-sized, with one of the `RECIPES`."""
    return benchmark.BenchmarkConfig(
        seeds=tuple(seeds),
        profile="smollm2",
        corpus_templates=CORPUS_TEMPLATES,
        # CPT (X1, X2, ctrl_cpt) trains the whole model: batch and block of its steps
        pretrain=PretrainParams(batch_size=8, block_size=32, learning_rate=1e-4),
        finetune=FinetuneParams(
            method="full",
            schedule="sequential",
            track_drift=False,
            lora=LoraParams(enabled=True, r=8, alpha=16),
            batch_size=8,
            learning_rate=2e-3,
            max_length=48,
            eval_every=10**6,
            eval_per_task=4,
            save_steps=10**6,
            logging_steps=12,
            resume=False,
            **RECIPES[recipe],
        ),
        ilp=IlpParams(
            max_length=48,
            max_new_tokens=12,
            # the gazetteer: every real capital, so a relabelled country's true capital is scored
            fact_candidates={"capital": tuple(sorted(set(CAPITALS.values())))},
            rules=rules or IlpRules(),
        ),
        cpt_steps=16,
        cpt_learning_rate=1e-4,
        cpt_lines=300,
    )


def short_template_base(source: Path, dest: Path) -> Path:
    """SmolLM2 as shipped (files linked, not copied) with `CHAT_TEMPLATE` (once)."""
    if (dest / "config.json").is_file():
        return dest
    with atomic_path(dest) as tmp:
        tmp.mkdir()
        for file in source.iterdir():
            if file.name != "chat_template.jinja":
                (tmp / file.name).symlink_to(file.resolve())
        (tmp / "chat_template.jinja").write_text(CHAT_TEMPLATE, encoding="utf-8")
    return dest


def build_world(work: Path, world: str, base: Path, sizes: WorldSizes) -> Path:
    """The world's data folder (once): probe the base, split the entities, plant the causes."""
    data = work / world / "data"
    if (data / "train.jsonl").is_file():
        return data
    knowledge_file = work / "knowledge.json"
    if not knowledge_file.is_file():
        write_json(knowledge_file, base_knowledge(base))
    knowledge = read_json(knowledge_file)
    entities = split_entities(knowledge, sizes)[world]
    records = planted_records(world, entities, knowledge, sizes)
    with atomic_path(data) as tmp:
        tmp.mkdir()
        write_jsonl(tmp / "train.jsonl", records)
        write_jsonl(tmp / "eval.jsonl", records[:8])
        (tmp / "corpus.txt").write_text("\n".join(general_corpus(records)) + "\n", "utf-8")
    return data


def exposure(records: Sequence[dict], params: FinetuneParams) -> dict[str, int]:
    """Original id -> how many times the run's schedule shows the record (copies included)."""
    stages = plan_stages(params, None, None, None, records)
    plan = schedule(params, None, records, stages)
    return dict(Counter(mitigate.original_id(records[i]["id"]) for i in plan.order))


def group_exposure(
    work: Path, data: Path, cfg: benchmark.BenchmarkConfig, seed: int
) -> dict[str, dict[str, float]]:
    """Run -> planted group -> mean passes over a record of the group, for plain SFT and every
    SFT-level intervention (the CPT runs train on the plain SFT data and schedule)."""
    records = read_jsonl(data / "train.jsonl")
    truth = {r["id"]: r["meta"]["planted_cause"] for r in records}
    runs = {"sft": (records, cfg.finetune.schedule)}
    for name in ("X3b", "X4", "ctrl_mix", "X5", "ctrl_sft"):
        if (work / f"data_{name}/train.jsonl").is_file():
            variant = read_jsonl(work / f"data_{name}/train.jsonl")
            runs[name] = (variant, "mixed" if name in ("X4", "ctrl_mix") else "sequential")
    out = {}
    for name, (train, schedule_) in runs.items():
        params = cfg.finetune.model_copy(update={"seed": seed, "schedule": schedule_})
        seen = exposure(train, params)
        groups = sorted(set(truth.values()))
        out[name] = {
            g: float(np.mean([seen.get(i, 0) for i, c in truth.items() if c == g])) for g in groups
        }
    return out


def loss_by_group(dynamics: Path, truth: dict[str, str]) -> dict[str, dict[str, float]]:
    """Planted group -> step -> mean per-record training loss (the finetune step's dynamics):
    the SFT's learning curves, to check the plateau."""
    losses: dict[str, dict[int, list[float]]] = {}
    for record_id, trajectory in read_dynamics(dynamics, list(truth)).items():
        for step, loss in trajectory:
            losses.setdefault(truth[record_id], {}).setdefault(step, []).append(loss)
    return {
        group: {str(step): float(np.mean(v)) for step, v in sorted(by_step.items())}
        for group, by_step in sorted(losses.items())
    }


def run_world(
    world: str,
    seeds: Sequence[int],
    work: Path,
    rules: IlpRules | None,
    interventions: bool,
    recipe: str,
):
    """SFT and diagnosis per seed, then (interventions) every intervention of each seed."""
    cfg = config(seeds, rules, recipe)
    if not interventions:
        cfg = benchmark.BenchmarkConfig(**{**cfg.__dict__, "interventions": False})
    base = short_template_base(materialize_smollm2(REPO / ".cache/smollm2"), work / "base")
    data = build_world(work, world, base, WorldSizes())
    results = []
    for seed in seeds:
        seed_work = work / recipe / world / f"seed{seed}"
        seed_work.mkdir(parents=True, exist_ok=True)
        result = benchmark.diagnose_seed(cfg, seed, seed_work, data, base)
        result["exposure"] = group_exposure(seed_work, data, cfg, seed)
        result["loss_by_group"] = loss_by_group(
            seed_work / "reports/sft/dynamics.csv", result["planted"]
        )
        result["rows"] = read_jsonl(seed_work / "reports/ilp/diagnosis.jsonl")
        results.append(result)
    return cfg, results


# --- calibration on dev: re-attribute the stored signals under each grid point ---


def reattribute(rows: Sequence[dict], rules: IlpRules, c4_gate: bool) -> list[dict]:
    """The rows' labels under other rules (signals as stored; `ever_learned` follows the
    learned-loss threshold through the stored minimum loss)."""
    analysed = [r for r in rows if r.get("analysed")]
    signals = [
        {**r["signals"], "ever_learned": r["signals"]["loss_min"] < rules.learned_loss}
        for r in analysed
    ]
    tau = attribute.jsd_threshold(rules, signals)
    relabelled = {
        r["id"]: attribute.attribute(s, rules, tau, c4_gate)
        for r, s in zip(analysed, signals, strict=True)
    }
    return [{**r, **relabelled.get(r["id"], {})} for r in rows]


def calibrate(dev: Sequence[dict]) -> dict[str, Any]:
    """The grid point with the highest mean dev macro-F1 (first of the ties), and every score."""
    scores = []
    for values in itertools.product(*GRID.values()):
        point = dict(zip(GRID, values, strict=True))
        if point["c2_test"] == "belief" and point["c2_belief"] is None:
            continue  # the belief test needs its threshold
        rules = IlpRules(**point)
        f1 = [
            ground_truth_report(
                reattribute(r["rows"], rules, r["summary"]["c4_gate"]), r["planted"]
            )["macro_f1"]
            for r in dev
        ]
        scores.append({"rules": point, "macro_f1": f1})
    best = max(scores, key=lambda s: float(np.mean(s["macro_f1"])))  # max keeps the first
    return {
        "grid": {k: list(v) for k, v in GRID.items()},
        "chosen": best["rules"],
        "dev_macro_f1_chosen": best["macro_f1"],
        "dev_macro_f1_default": scores[0]["macro_f1"],
        "scores": scores,
    }


def world_summary(results: Sequence[dict]) -> dict[str, Any]:
    summary = benchmark.aggregate(results)
    summary["exposure"] = {
        run: {
            g: float(np.mean([r["exposure"][run][g] for r in results]))
            for g in results[0]["exposure"][run]
        }
        for run in results[0]["exposure"]
    }
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m experiments.ilp.smollm2_benchmark")
    parser.add_argument(
        "stage",
        choices=["dev", "calibrate", "heldout", "heldout-more", "interventions", "report"],
        help="heldout-more: the held-out world on the seeds preregistered in "
        "heldout_more_seeds_preregistration.json",
    )
    parser.add_argument("--seeds", type=int, nargs="+", help="default: 0 1 2 (heldout-more: 3 4 5)")
    parser.add_argument("--work", type=Path, default=REPO / ".cache/ilp_smollm2")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--recipe", choices=list(RECIPES), default="epochs3", help="plateau: the check run"
    )
    args = parser.parse_args(argv)
    seeds = args.seeds or ([3, 4, 5] if args.stage == "heldout-more" else [0, 1, 2])
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    work, out = args.work.resolve(), args.out.resolve()
    work.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{work / 'mlflow.db'}")
    from experiments.ilp import smollm2_report  # matplotlib only where pages are written

    if args.stage == "report":
        smollm2_report.write_sections(out)
        return 0
    if args.stage == "calibrate":
        dev = read_json(out / "dev.json")
        write_json(out / "calibration.json", calibrate(dev["seeds"]))
        smollm2_report.write_sections(out)
        return 0
    rules = None
    if args.stage in ("heldout", "heldout-more", "interventions"):
        if not (out / "calibration.json").is_file():
            raise SystemExit(f"{out / 'calibration.json'} is missing: run `calibrate` first")
        rules = IlpRules(**read_json(out / "calibration.json")["chosen"])
    os.chdir(work)  # Trainer checkpoints land in the work folder
    interventions = args.stage == "interventions"
    world = "dev" if args.stage == "dev" else "heldout"
    cfg, results = run_world(world, seeds, work, rules, interventions, args.recipe)
    name = {"heldout-more": "heldout_more_seeds"}.get(args.stage, args.stage)
    name = name if args.recipe == "epochs3" else f"{name}_{args.recipe}"
    write_json(
        out / f"{name}.json",
        {
            "config": benchmark.config_dump(cfg),
            "knowledge": read_json(work / "knowledge.json"),
            "aggregate": world_summary(results),
            "seeds": results,
        },
    )
    smollm2_report.write_sections(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
