"""ATM on the people world (tiny profile), in the order experiments/lanes.py fixes:

    python -m experiments.atm.benchmark prereg      # preregistration.json (commit it first)
    python -m experiments.atm.benchmark phenomenon  # G_0 (SFT) alone: does a fabrication fool it?
    python -m experiments.atm.benchmark compare     # every arm
    python -m experiments.atm.benchmark report      # docs/results/atm.md

Every run is the product's own steps called in-process (atm data, index, retrieve, pretrain,
finetune, rounds, evaluate), each seed a new world (data seed = training seed). The phenomenon
runs on the comparison's own seeds: its G_0 is the comparison's SFT arm, trained once.

Arms (the spec's): `sft` (G_0), `noise_aug` (G_0 trained on lists with 1-3 irrelevant documents:
RetRobust-like), `static_aug` (G_0 trained on lists with 1-3 template fabrications from the
training templates: the spec's Static-Aug), `atm`, `atm_nokl` (MITO beta 0) and
`atm_frozen_attacker` (no attacker DPO). The two augmentation arms train with the same loss
(MITO at beta 0, the answer's cross-entropy on the attacked list), the same list perturbation and
the same steps as ATM's generator turns; only where the inserted documents come from differs."""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from components.common.io import read_json, read_jsonl
from experiments.lanes import COMPARE_SEEDS, stage_cli

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "docs/results/atm"
WORK = REPO / ".cache/atm_benchmark"
ROUND_ARMS: dict[str, dict[str, Any]] = {  # the arms that play rounds: their overrides of `atm`
    "atm": {},
    "atm_nokl": {"mito": {"beta": 0.0}},
    "atm_frozen_attacker": {"attacker": {"update": False}},
}
AUG_ARMS = ("noise_aug", "static_aug")
ARMS = ("sft", *AUG_ARMS, *ROUND_ARMS)
# the headline test condition (spec acceptance 2: held-out fabricator, n_fab 1-2)
HEADLINE = "heldout_2_top"


@dataclass(frozen=True)
class BenchConfig:
    """The benchmark's sizes: ours, chosen for 2 CPU cores (the spec's in the comments)."""

    people: int = 300  # spec: 3,000
    hidden_size: int = 128  # spec: 256
    intermediate_size: int = 256  # spec: 768
    base_steps: int = 400  # spec: 2,000
    base_block_size: int = 64  # spec: up to 512
    top_k: int = 5  # spec: 5
    sft_steps: int = 1200
    sft_learning_rate: float = 1e-3
    attacker_sft_steps: int = 300
    batch_size: int = 16
    rounds: int = 3
    questions_per_round: int = 160
    fabrications: int = 4  # spec: 5
    dpo_steps: int = 40
    mito_steps: int = 60  # spec: 300 per round
    probe_questions: int = 64
    test_questions: int = 300  # the first of the test split, every arm on the same lists


def step_params(cfg: BenchConfig, seed: int) -> dict[str, Any]:
    from components.atm.params import AtmDataParams, AtmParams, RetrieveParams
    from components.common.params import ModelParams, TinyModelParams
    from components.epi_finetune.params import FinetuneParams
    from components.pretrain.params import PretrainParams

    def sft(steps: int) -> FinetuneParams:
        return FinetuneParams(
            seed=seed,
            method="full",
            track_drift=False,
            max_steps=steps,
            batch_size=cfg.batch_size,
            learning_rate=cfg.sft_learning_rate,
            max_length=384,
            eval_every=10**6,
            eval_per_task=8,
            dynamics_every=10**6,
            save_steps=10**6,
            logging_steps=50,
            resume=False,
        )

    atm = AtmParams.model_validate(
        {
            "seed": seed,
            "rounds": cfg.rounds,
            "questions_per_round": cfg.questions_per_round,
            "probe_questions": cfg.probe_questions,
            "attacker": {
                "fabrications": cfg.fabrications,
                "max_new_tokens": 48,
                "dpo": {
                    "seed": seed,
                    "beta": 0.2,
                    "sft_weight": 0.0,
                    "learning_rate": 5e-5,
                    "max_steps": cfg.dpo_steps,
                    "batch_size": 8,
                    "max_length": 384,
                    "logging_steps": 10,
                },
            },
            "mito": {
                "max_steps": cfg.mito_steps,
                "batch_size": cfg.batch_size,
                "learning_rate": 5e-5,
                "max_length": 384,
                "logging_steps": 20,
            },
            "log_round_models": False,
        }
    )
    return {
        "data": AtmDataParams(seed=seed, people=cfg.people),
        "retrieve": RetrieveParams(seed=seed, top_k=cfg.top_k),
        "model": ModelParams(
            tiny=TinyModelParams(
                hidden_size=cfg.hidden_size,
                intermediate_size=cfg.intermediate_size,
                max_position_embeddings=512,
            )
        ),
        "base": PretrainParams(
            seed=seed,
            max_steps=cfg.base_steps,
            learning_rate=3e-3,
            block_size=cfg.base_block_size,
        ),
        "sft": sft(cfg.sft_steps),
        "attacker_sft": sft(cfg.attacker_sft_steps),
        "atm": atm,
    }


def deep_update(params: Any, overrides: dict[str, Any]) -> Any:
    """A pydantic model with nested `overrides` applied (validated again)."""
    merged = params.model_dump()
    for key, value in overrides.items():
        merged[key] = {**merged[key], **value} if isinstance(value, dict) else value
    return type(params).model_validate(merged)


def augmentation_rows(arm: str, train: list[dict], world_state: dict, atm_params, rng) -> list:
    """The augmentation arms' MITO rows: per round's question sample, 1-3 documents inserted at
    random positions, the list perturbed as ATM's generator turn perturbs it."""
    from components.atm import attacks, world
    from components.atm.evaluate_step import question
    from components.atm.rounds_step import mito_rows

    people = {p["name"]: world.Person(**p) for p in world_state["people"]}
    corpus_docs = [c for q in train for c in q["ctxs"]]
    rows = []
    for _ in range(atm_params.rounds):
        size = min(atm_params.questions_per_round or len(train), len(train))
        questions = rng.sample(train, size)
        inserted = []
        for q in questions:
            n = rng.randint(1, 3)
            if arm == "static_aug":
                inserted.append(
                    attacks.template_fabrications(
                        question(q),
                        people,
                        world_state["values"],
                        n,
                        False,
                        rng,
                        world.TRAIN_FABRICATIONS,
                    )
                )
            else:  # irrelevant genuine documents: other questions' retrieved ones
                own = {c["id"] for c in q["ctxs"]}
                others = [c for c in rng.sample(corpus_docs, 4 * n) if c["id"] not in own]
                inserted.append([{k: c[k] for k in ("id", "title", "text")} for c in others[:n]])
        rows += mito_rows(questions, inserted, atm_params, rng)
    return rows


def train_arms(cfg: BenchConfig, seed: int, root: Path, arms: tuple[str, ...]) -> dict[str, Path]:
    """The models of `arms` under `root`/models, each trained unless already on disk."""
    from components.atm import data_step, index_step, retrieve_step, rounds_step
    from components.atm.mito import train_mito
    from components.epi_finetune import step as finetune
    from components.pretrain import step as pretrain

    p = step_params(cfg, seed)
    data, index, retrieved = root / "data", root / "index", root / "retrieved"
    reports, models = root / "reports", root / "models"
    if not data.is_dir():
        data_step.run(p["data"], "tiny", data, reports / "data")
    if not index.is_dir():
        index_step.run(p["retrieve"], "tiny", data, index)
    if not retrieved.is_dir():
        retrieve_step.run(p["retrieve"], "tiny", data, index, retrieved, reports / "retrieve")
    base = models / "base"
    if not base.is_dir():
        pretrain.run(p["base"], p["model"], "tiny", data, base, reports / "base")
    out = {"sft": models / "sft", "attacker_sft": models / "attacker_sft"}
    if not out["sft"].is_dir():
        finetune.run(
            p["sft"], "tiny", retrieved / "warmup", base, out["sft"], reports / "sft", root / "ck"
        )
    if set(arms) & set(ROUND_ARMS) and not out["attacker_sft"].is_dir():
        finetune.run(
            p["attacker_sft"],
            "tiny",
            retrieved / "attacker",
            base,
            out["attacker_sft"],
            reports / "attacker_sft",
            root / "ck",
        )
    for arm in (a for a in arms if a in AUG_ARMS):
        out[arm] = models / arm
        if not out[arm].is_dir():
            train = read_jsonl(retrieved / "train.jsonl")
            atm = p["atm"]
            rows = augmentation_rows(
                arm, train, read_json(data / "world.json"), atm, random.Random(seed)
            )
            mito = atm.mito.model_copy(
                update={"beta": 0.0, "max_steps": atm.rounds * cfg.mito_steps}
            )
            train_mito(mito, out["sft"], rows, out[arm], reports / arm, seed)
    for arm in (a for a in arms if a in ROUND_ARMS):
        out[arm] = models / arm
        if not out[arm].is_dir():
            params = deep_update(p["atm"], ROUND_ARMS[arm])
            rounds_step.run(
                params,
                "tiny",
                retrieved,
                out["sft"],
                out["attacker_sft"],
                out[arm],
                reports / arm,
            )
    return out


def run_seed(cfg: BenchConfig, seed: int, work: Path, arms: tuple[str, ...]) -> dict[str, Any]:
    """Every arm scored on the same test lists; the rounds' histories of the round arms."""
    from components.atm import evaluate_step
    from components.common.io import write_jsonl

    root = work / f"seed{seed}"
    models = train_arms(cfg, seed, root, arms)
    retrieved = root / "retrieved"
    test = retrieved / f"test_first{cfg.test_questions}"
    if not test.is_dir():
        test.mkdir(parents=True)
        write_jsonl(test / "test.jsonl", read_jsonl(retrieved / "test.jsonl")[: cfg.test_questions])
    scored = {arm: models[arm] / "generator" if arm in ROUND_ARMS else models[arm] for arm in arms}
    attacker = models["atm"] / "attacker" if "atm" in arms else None
    p = step_params(cfg, seed)
    metrics = evaluate_step.run(
        p["atm"], "tiny", root / "data", test, attacker, scored, root / "reports/evaluate"
    )
    return {
        "seed": seed,
        "recall": read_json(root / "reports/retrieve/recall.json"),
        "metrics": metrics,
        "items": item_scores(read_jsonl(root / "reports/evaluate/predictions.jsonl")),
        "rounds": {
            arm: read_json(root / f"reports/{arm}/rounds.json") for arm in arms if arm in ROUND_ARMS
        },
    }


def item_scores(predictions: list[dict]) -> dict[str, dict[str, list[int]]]:
    """Per arm and condition, each test question's EM (0/1), in test order."""
    out: dict[str, dict[str, list[int]]] = {}
    for row in predictions:
        out.setdefault(row["model"], {}).setdefault(row["condition"], []).append(int(row["em"]))
    return out


def preregistration() -> dict[str, Any]:
    return {
        "written": "before any run of this benchmark's arms; committed with the code",
        "design_history": "",
        "config": asdict(BenchConfig()),
        "order": "1. phenomenon: G_0 (SFT) alone on seeds 0-2, committed; 2. compare: every arm "
        "on the same seeds (G_0 reused); 3. report",
        "phenomenon": "a fabrication fools G_0: per seed, G_0's test EM on clean lists minus its "
        f"EM with the held-out fabricator's documents ({HEADLINE}); shown when the 95 % t "
        "interval over the 3 seeds lies wholly above 0 and G_0's clean EM is at least 0.3 (a "
        "generator that reads). If not shown, the comparison is reported as testing nothing",
        "claims": {
            "1_attacked_em": f"EM under attack ({HEADLINE}): ATM - SFT >= +0.05 and ATM - "
            "static_aug >= +0.02, each with the 95 % paired t interval over seeds above 0 "
            "(spec acceptance 2); also against noise_aug (the issue's RetRobust-style baseline)",
            "2_clean_em": "clean EM: ATM >= SFT - 0.02, judged by TOST within +-0.02 or the "
            "interval's lower end above -0.02 (spec acceptance 3)",
            "3_attacker_strengthens": "attack strength (G_t's mean gold-answer NLL on fresh "
            "fabrications) after the attacker's DPO exceeds before, in >= 2 of 3 rounds on "
            "average over seeds, with the paired interval over seeds per round (acceptance 1)",
            "4_convergence": "dev EM under the round's attacker rises from round 1 to 2 and "
            "rounds 2 and 3 are within 0.01 (acceptance 4; descriptive with intervals)",
            "5_ablations": "noKL: larger clean-attacked gap or lower clean EM than ATM; frozen "
            "attacker: lower EM than ATM on the trained attacker's documents (attacker_top)",
            "6_other_conditions": "every other test condition reported per arm (noise, random "
            "positions, 1-3 fabrications, corroborated), with adoption rates",
        },
        "seeds": {"phenomenon": list(COMPARE_SEEDS), "compare": list(COMPARE_SEEDS)},
        "statistics": "mean +- sample std (ddof 1) over seeds; paired t interval of per-seed "
        "differences (experiments.stats); equivalence by TOST (experiments.stats)",
    }


def write_report() -> None:
    from experiments.atm import report

    report.write_report(RESULTS)


def main(argv: list[str] | None = None) -> int:
    return stage_cli(
        argv,
        "experiments.atm.benchmark",
        (WORK, RESULTS),
        preregistration,
        BenchConfig(),
        run_seed,
        ARMS,
        write_report,
        phenomenon_seeds=COMPARE_SEEDS,
    )


if __name__ == "__main__":
    raise SystemExit(main())
