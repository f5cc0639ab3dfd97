"""KnowTuning on the entity world (tiny profile), in the order the project requires:

    python -m experiments.knowtuning.benchmark prereg      # preregistration.json (commit it first)
    python -m experiments.knowtuning.benchmark phenomenon  # base + SFT only, seeds 100-102
    python -m experiments.knowtuning.benchmark compare     # every arm, seeds 0 1 2
    python -m experiments.knowtuning.benchmark report      # docs/results/knowtuning.md

Every run is the product's own steps called in-process (knowtuning_data, pretrain, finetune,
augment, compare), each seed a new world (data seed = training seed). A seed's results are
written to its own JSON under the work folder as soon as it finishes, so a stopped stage resumes.

Arms (the spec's): `sft` (vanilla SFT), `sft_ka` (KA: SFT on originals + fine-grained pairs),
`sft_kc` (KC from the SFT model, no KA), `facttune` (DPO on factuality pairs only, from SFT: the
FactTune-like baseline), `knowtuning` (KA then KC), and `kt_no_<aspect>` (KnowTuning without
that aspect's pairs)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from components.common.io import read_jsonl
from experiments.lanes import COMPARE_SEEDS, PHENOMENON_SEEDS, stage_cli

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "docs/results/knowtuning"
WORK = REPO / ".cache/knowtuning_benchmark"
ASPECTS = ("completeness", "factuality", "logicality")
# arm -> (DPO init, aspects); None: no DPO (the SFT models themselves)
DPO_ARMS: dict[str, tuple[str, tuple[str, ...]]] = {
    "sft_kc": ("sft", ASPECTS),
    "facttune": ("sft", ("factuality",)),
    "knowtuning": ("sft_ka", ASPECTS),
    **{f"kt_no_{a}": ("sft_ka", tuple(x for x in ASPECTS if x != a)) for a in ASPECTS},
}
ARMS = ("sft", "sft_ka", *DPO_ARMS)


@dataclass(frozen=True)
class BenchConfig:
    """The benchmark's sizes: ours, chosen for 2 CPU cores (about 5 minutes a seed)."""

    entities: int = 60
    test_entities: int = 15
    documents: int = 8
    base_steps: int = 600
    sft_steps: int = 150
    sft_learning_rate: float = 3e-4  # full fine-tuning of the tiny model
    batch_size: int = 16
    dpo_steps: int = 60
    dpo_learning_rate: float = 1e-4
    max_new_tokens: int = 96


def step_params(cfg: BenchConfig, seed: int) -> dict[str, Any]:
    from components.common.params import LoraParams
    from components.common.preference import PreferenceParams
    from components.epi_finetune.params import FinetuneParams
    from components.knowtuning.params import KnowTuningDataParams
    from components.pretrain.params import PretrainParams

    return {
        "data": KnowTuningDataParams(
            seed=seed,
            entities=cfg.entities,
            test_entities=cfg.test_entities,
            documents=cfg.documents,
        ),
        "base": PretrainParams(seed=seed, max_steps=cfg.base_steps, learning_rate=3e-3),
        "sft": FinetuneParams(
            seed=seed,
            method="full",
            track_drift=False,
            max_steps=cfg.sft_steps,
            batch_size=cfg.batch_size,
            learning_rate=cfg.sft_learning_rate,
            max_length=128,
            eval_every=cfg.sft_steps,
            eval_per_task=10,
            dynamics_every=10**6,
            save_steps=10**6,
            logging_steps=25,
            resume=False,
        ),
        "dpo": PreferenceParams(
            seed=seed,
            max_steps=cfg.dpo_steps,
            batch_size=8,
            learning_rate=cfg.dpo_learning_rate,
            max_length=160,
            logging_steps=10,
            lora=LoraParams(),
        ),
    }


def base_knowledge(base_dir: Path, records: list[dict[str, Any]]) -> list[float]:
    """Per record: the share of its facts the base completes by greedy cloze, with the prefix of
    the fact's sentence after its document header ("About X: It is caused by" -> "Salovir")."""
    from components.common.models import load_causal_lm
    from components.common.sft import greedy_continuations
    from components.knowtuning.world import Fact, render_fact

    model, tokenizer = load_causal_lm(base_dir)
    prompts, values, owners = [], [], []
    for index, record in enumerate(records):
        for attribute, prev, value in record["meta"]["chain"]:
            sentence = render_fact(Fact(attribute, prev, value))
            head = sentence[: sentence.rindex(value)].rstrip()
            prompts.append(f"About {record['meta']['entity']}: {head}")
            values.append(value)
            owners.append(index)
    answers = greedy_continuations(model, tokenizer, prompts, 8, 64)
    known = [0.0] * len(records)
    for owner, value, answer in zip(owners, values, answers, strict=True):
        known[owner] += answer.startswith(value) / len(records[owner]["meta"]["chain"])
    return known


def evaluate(model_dir: Path, data_dir: Path, cfg: BenchConfig) -> dict[str, Any]:
    """Per split: each test item's aspect scores and their means."""
    from components.common.models import load_causal_lm
    from components.common.sft import greedy_record_answers
    from components.knowtuning.evaluate_step import score
    from components.knowtuning.metrics import mean_scores

    model, tokenizer = load_causal_lm(model_dir)
    out = {}
    for split in ("test", "test_unseen"):
        records = read_jsonl(data_dir / f"{split}.jsonl")
        answers = greedy_record_answers(model, tokenizer, records, cfg.max_new_tokens, 32)
        items = [score(a, r) for a, r in zip(answers, records, strict=True)]
        out[split] = {"mean": mean_scores(items), "items": items, "answers": answers[:3]}
    return out


def train_arms(
    profile: str, seed: int, root: Path, data: Path, base: Path, arms: tuple[str, ...], p: dict
) -> dict[str, Path]:
    """The models of `arms` under `root`/models, each trained by the product's steps unless it is
    already on disk: vanilla SFT, KA (augment, then SFT from the base) and the DPO arms."""
    from components.epi_finetune import step as finetune
    from components.knowtuning import augment_step, compare_step
    from components.knowtuning.params import KaParams, KcParams, KnowTuningParams

    reports, checkpoints = root / "reports", root / "ckpt"
    models = {"sft": root / "models/sft", "sft_ka": root / "models/sft_ka"}
    if not models["sft"].is_dir():
        finetune.run(p["sft"], profile, data, base, models["sft"], reports / "sft", checkpoints)
    if "sft_ka" in arms and not models["sft_ka"].is_dir():
        ka_data = root / "data_ka"
        if not ka_data.is_dir():
            params = KnowTuningParams(seed=seed, ka=p.get("ka", KaParams()))
            augment_step.run(params, profile, data, base, ka_data, reports / "ka")
        finetune.run(
            p["sft"], profile, ka_data, base, models["sft_ka"], reports / "ka_sft", checkpoints
        )
    for arm in (a for a in arms if a in DPO_ARMS):
        init, aspects = DPO_ARMS[arm]
        models[arm] = root / f"models/{arm}"
        if not models[arm].is_dir():
            params = KnowTuningParams(seed=seed, kc=KcParams(aspects=aspects, dpo=p["dpo"]))
            pairs = root / f"pairs/{arm}"
            compare_step.run(params, profile, data, models[init], pairs, models[arm], reports / arm)
    return models


def run_seed(cfg: BenchConfig, seed: int, work: Path, arms: tuple[str, ...]) -> dict[str, Any]:
    from components.common.params import ModelParams
    from components.knowtuning import data_step
    from components.pretrain import step as pretrain

    p = step_params(cfg, seed)
    root = work / f"seed{seed}"
    data, base, reports = root / "data", root / "models/base", root / "reports"
    if not data.is_dir():
        data_step.run(p["data"], "tiny", data, reports / "data")
    if not base.is_dir():
        pretrain.run(p["base"], ModelParams(), "tiny", data, base, reports / "base")
    models = train_arms("tiny", seed, root, data, base, arms, p)
    test = read_jsonl(data / "test.jsonl")
    return {
        "seed": seed,
        "base_known": base_knowledge(base, test),
        "arms": {arm: evaluate(models[arm], data, cfg) for arm in arms},
    }


def preregistration() -> dict[str, Any]:
    return {
        "written": "before any run of this benchmark; committed with the code",
        "design_history": "The world's format was fixed on scratch worlds (seed 0) with the "
        "base and SFT only, no KnowTuning arm ever run: with facts naming their entity and a "
        "corpus of bare sentences or bare documents, SFT stated 0 correct facts per held-out "
        "answer (it cannot copy an unseen name), so the benchmark could test nothing. Documents "
        "headed 'About X:' with facts referring to the entity as 'it' gave SFT 0.47 correct "
        "facts per held-out answer (completeness 0.09) while the base completed 80 % of them by "
        "cloze: that design is the one kept. Sizes below were not tuned on any arm",
        "config": asdict(BenchConfig()),
        "order": "1. phenomenon: base + SFT only on seeds 100-102, committed; 2. compare: every "
        "arm on seeds 0-2 (new worlds); 3. report",
        "phenomenon": "SFT leaves out facts the base knows: per seed, the mean over held-out "
        "test answers of (share of the answer's facts the base completes by cloze) - (SFT "
        "completeness); shown when the 95 % t interval over the 3 seeds lies wholly above 0. If "
        "not shown, the comparison is reported as testing nothing",
        "claims": {
            "1_aspects": "KnowTuning beats SFT on completeness, factuality (1 - error rate) and "
            "logicality: the 95 % paired t interval over seeds of KT - SFT lies above 0 for each; "
            "the spec's threshold: gains >= 0.03 in at least two of the three",
            "2_more_correct_fewer_errors": "correct facts per answer rise and the error rate "
            "falls (both paired intervals exclude 0 in that direction)",
            "3_ablation_specificity": "removing one aspect's pairs costs that aspect's metric "
            "more than the other two (descriptive, with the paired intervals)",
            "4_vs_facttune": "KnowTuning - FactTune-like: interval above 0 on completeness and "
            "logicality; on factuality equivalent by TOST within +-0.05",
            "5_unseen": "claim 1 on test_unseen (question phrasings never trained)",
        },
        "strongest_baseline": "the non-KnowTuning arm with the highest mean knowledge score "
        "(mean of completeness and 1 - error rate) on test; every claim also against it",
        "seeds": {"phenomenon": list(PHENOMENON_SEEDS), "compare": list(COMPARE_SEEDS)},
        "statistics": "mean +- sample std (ddof 1) over seeds; paired t interval of per-seed "
        "differences (experiments.stats); logicality averages the answers where it is defined",
    }


def write_report() -> None:
    from experiments.knowtuning import report

    report.write_report(RESULTS)


def main(argv: list[str] | None = None) -> int:
    return stage_cli(
        argv,
        "experiments.knowtuning.benchmark",
        (WORK, RESULTS),
        preregistration,
        BenchConfig(),
        run_seed,
        ARMS,
        write_report,
    )


if __name__ == "__main__":
    raise SystemExit(main())
