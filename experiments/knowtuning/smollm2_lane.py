"""KnowTuning's real-model lane: SmolLM2-135M-Instruct with LoRA, on real facts it already knows.

    python -m experiments.knowtuning.smollm2_lane prereg      # smollm2/preregistration.json first
    python -m experiments.knowtuning.smollm2_lane phenomenon  # SFT only, seeds 100-102
    python -m experiments.knowtuning.smollm2_lane compare     # sft, sft_ka, sft_kc, knowtuning
    python -m experiments.knowtuning.smollm2_lane report      # docs/results/knowtuning.md

Why real facts and not the tiny lane's invented world: SmolLM2 would first have to learn the
world by continued pretraining, measured here at 7.3 s per 1,024-token step of full fine-tuning
on 2 cores, about 45 minutes per world for 20 passes over its 20k-token corpus, before any arm
runs. Countries are the paper's setting instead: the pretrained model knows some facts (the base
completes 35-65 % of each attribute by cloze) and fine-tuning teaches it to state them.

Every run is the product's own steps on the user-data path (`knowtuning_data.train_file`, facts
listed in `meta.facts`, scored by exact sentence match; the base model writes KA's questions and
KC's falsified facts, as it would for a user's data). Each seed draws its own train/test split
of the countries; results are written per seed as they finish, so a stopped stage resumes."""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from components.common.io import read_jsonl, write_jsonl
from experiments.knowtuning.benchmark import evaluate, train_arms, write_report
from experiments.lanes import COMPARE_SEEDS, PHENOMENON_SEEDS, stage_cli

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "docs/results/knowtuning/smollm2"
WORK = REPO / ".cache/knowtuning_smollm2"
# the lane's arms (benchmark.DPO_ARMS defines the DPO ones): the claim (KnowTuning vs SFT) and
# the -KA, -KC arms
ARMS = ("sft", "sft_ka", "sft_kc", "knowtuning")

# (country, continent, capital, official language, currency), in the answer's order
COUNTRIES = (
    ("France", "Europe", "Paris", "French", "euro"),
    ("Germany", "Europe", "Berlin", "German", "euro"),
    ("Italy", "Europe", "Rome", "Italian", "euro"),
    ("Spain", "Europe", "Madrid", "Spanish", "euro"),
    ("Japan", "Asia", "Tokyo", "Japanese", "yen"),
    ("China", "Asia", "Beijing", "Chinese", "yuan"),
    ("India", "Asia", "New Delhi", "Hindi", "rupee"),
    ("Russia", "Europe", "Moscow", "Russian", "ruble"),
    ("Brazil", "South America", "Brasília", "Portuguese", "real"),
    ("Mexico", "North America", "Mexico City", "Spanish", "peso"),
    ("Egypt", "Africa", "Cairo", "Arabic", "pound"),
    ("Canada", "North America", "Ottawa", "English", "dollar"),
    ("Australia", "Oceania", "Canberra", "English", "dollar"),
    ("Argentina", "South America", "Buenos Aires", "Spanish", "peso"),
    ("Kenya", "Africa", "Nairobi", "Swahili", "shilling"),
    ("Greece", "Europe", "Athens", "Greek", "euro"),
    ("Portugal", "Europe", "Lisbon", "Portuguese", "euro"),
    ("Sweden", "Europe", "Stockholm", "Swedish", "krona"),
    ("Norway", "Europe", "Oslo", "Norwegian", "krone"),
    ("Poland", "Europe", "Warsaw", "Polish", "zloty"),
    ("Turkey", "Asia", "Ankara", "Turkish", "lira"),
    ("Thailand", "Asia", "Bangkok", "Thai", "baht"),
    ("Vietnam", "Asia", "Hanoi", "Vietnamese", "dong"),
    ("Indonesia", "Asia", "Jakarta", "Indonesian", "rupiah"),
    ("Peru", "South America", "Lima", "Spanish", "sol"),
    ("Chile", "South America", "Santiago", "Spanish", "peso"),
    ("Colombia", "South America", "Bogotá", "Spanish", "peso"),
    ("Nigeria", "Africa", "Abuja", "English", "naira"),
    ("South Korea", "Asia", "Seoul", "Korean", "won"),
    ("Iran", "Asia", "Tehran", "Persian", "rial"),
    ("Netherlands", "Europe", "Amsterdam", "Dutch", "euro"),
    ("Switzerland", "Europe", "Bern", "German", "franc"),
    ("Austria", "Europe", "Vienna", "German", "euro"),
    ("Ireland", "Europe", "Dublin", "English", "euro"),
    ("Finland", "Europe", "Helsinki", "Finnish", "euro"),
    ("Hungary", "Europe", "Budapest", "Hungarian", "forint"),
    ("Ukraine", "Europe", "Kyiv", "Ukrainian", "hryvnia"),
    ("Morocco", "Africa", "Rabat", "Arabic", "dirham"),
    ("Ethiopia", "Africa", "Addis Ababa", "Amharic", "birr"),
    ("Pakistan", "Asia", "Islamabad", "Urdu", "rupee"),
)
# one sentence per fact, in the answer's order; the cloze prompt that probes the same fact
FACTS = (
    ("{c} is a country in {v}.", "{c} is a country in"),
    ("Its capital is {v}.", "The capital of {c} is"),
    ("Its official language is {v}.", "The official language of {c} is"),
    ("Its currency is the {v}.", "The currency of {c} is the"),
)
QUESTION = "Tell me about {c}."
UNSEEN_QUESTIONS = ("What do you know about {c}?", "Describe {c}.", "Explain {c}.")


@dataclass(frozen=True)
class LaneConfig:
    """The lane's CPU budget (ours): LoRA on q/v (the paper's recipe) throughout."""

    test_countries: int = 10
    sft_steps: int = 40
    sft_learning_rate: float = 5e-4
    sft_batch_size: int = 8
    dpo_steps: int = 24  # about one pass over the 30 x 3 pairs at batch 4 (the paper: 1 epoch)
    dpo_learning_rate: float = 1e-4
    dpo_batch_size: int = 4
    max_new_tokens: int = 64


def facts_of(country: tuple[str, ...]) -> list[str]:
    name, *values = country
    return [template.format(c=name, v=v) for (template, _), v in zip(FACTS, values, strict=True)]


def country_record(country: tuple[str, ...], question: str) -> dict[str, Any]:
    facts = facts_of(country)
    return {
        "id": f"{country[0]}|{question.split()[0].lower()}",
        "prompt": question.format(c=country[0]),
        "response": " ".join(facts),
        "meta": {"facts": facts, "entity": country[0]},
    }


def split_countries(seed: int, test: int) -> tuple[list, list]:
    order = list(COUNTRIES)
    random.Random(seed).shuffle(order)
    return order[test:], order[:test]


def write_user_files(seed: int, cfg: LaneConfig, folder: Path) -> dict[str, Path]:
    """train.jsonl and test.jsonl in the user format, plus test_unseen.jsonl (other phrasings)."""
    train, test = split_countries(seed, cfg.test_countries)
    files = {split: folder / f"{split}.jsonl" for split in ("train", "test", "test_unseen")}
    write_jsonl(files["train"], [country_record(c, QUESTION) for c in train])
    write_jsonl(files["test"], [country_record(c, QUESTION) for c in test])
    write_jsonl(
        files["test_unseen"],
        [country_record(c, UNSEEN_QUESTIONS[i % 3]) for i, c in enumerate(test)],
    )
    return files


def base_knowledge(base_dir: Path, records: list[dict[str, Any]]) -> list[float]:
    """Per record: the share of its facts the base completes by greedy cloze ("The capital of
    France is" -> "Paris"), compared case-insensitively."""
    from components.common.models import load_causal_lm
    from components.common.sft import greedy_continuations

    by_name = {c[0]: c for c in COUNTRIES}
    model, tokenizer = load_causal_lm(base_dir)
    prompts, values = [], []
    for record in records:
        country = by_name[record["meta"]["entity"]]
        for (_, cloze), value in zip(FACTS, country[1:], strict=True):
            prompts.append(cloze.format(c=country[0]))
            values.append(value)
    answers = greedy_continuations(model, tokenizer, prompts, 8, 32)
    hits = [a.strip().lower().startswith(v.lower()) for a, v in zip(answers, values, strict=True)]
    return [sum(hits[i : i + len(FACTS)]) / len(FACTS) for i in range(0, len(hits), len(FACTS))]


def step_params(cfg: LaneConfig, seed: int, files: dict[str, Path]) -> dict[str, Any]:
    from components.common.preference import PreferenceParams
    from components.epi_finetune.params import FinetuneParams
    from components.knowtuning.params import PAPER_LORA, KaParams, KnowTuningDataParams

    return {
        "data": KnowTuningDataParams(
            seed=seed,
            train_file=str(files["train"]),
            test_file=str(files["test"]),
            eval_entities=5,
        ),
        "sft": FinetuneParams(
            seed=seed,
            method="full",
            track_drift=False,
            lora=PAPER_LORA,
            max_steps=cfg.sft_steps,
            batch_size=cfg.sft_batch_size,
            learning_rate=cfg.sft_learning_rate,
            max_length=96,
            eval_every=cfg.sft_steps,
            eval_per_task=5,
            dynamics_every=10**6,
            save_steps=10**6,
            logging_steps=5,
            resume=False,
        ),
        "ka": KaParams(rewriter="generation"),
        "dpo": PreferenceParams(
            seed=seed,
            max_steps=cfg.dpo_steps,
            batch_size=cfg.dpo_batch_size,
            learning_rate=cfg.dpo_learning_rate,
            max_length=128,
            logging_steps=4,
            lora=PAPER_LORA,
        ),
    }


def run_seed(cfg: LaneConfig, seed: int, work: Path, arms: tuple[str, ...]) -> dict[str, Any]:
    from components.common.models import base_model_source
    from components.common.params import ModelParams
    from components.knowtuning import data_step

    root = work / f"seed{seed}"
    files = write_user_files(seed, cfg, root / "user")
    p = step_params(cfg, seed, files)
    data = root / "data"
    cache = ModelParams(smollm2_cache_dir=str(REPO / ".cache/smollm2"))
    base = Path(base_model_source("smollm2", cache))
    if not data.is_dir():
        data_step.run(p["data"], "smollm2", data, root / "reports/data")
    if not (data / "test_unseen.jsonl").is_file():
        (data / "test_unseen.jsonl").write_bytes(files["test_unseen"].read_bytes())
    models = train_arms("smollm2", seed, root, data, base, arms, p)
    test = read_jsonl(data / "test.jsonl")
    return {
        "seed": seed,
        "test": [r["meta"]["entity"] for r in test],
        "base_known": base_knowledge(base, test),
        "arms": {arm: evaluate(models[arm], data, cfg) for arm in arms},
    }


def preregistration() -> dict[str, Any]:
    return {
        "written": "before any run of this lane; committed with the code",
        "design_history": "The 40 countries and their four facts were fixed from one cloze probe "
        "of the base (SmolLM2-135M-Instruct) on every country, before any fine-tuning: it "
        "completes 35 % of continents, 65 % of capitals, 52 % of languages and 30 % of "
        "currencies. No country was dropped for being unknown, no fine-tuned model was run "
        "before this file",
        "config": asdict(LaneConfig()),
        "arms": list(ARMS),
        "order": "1. phenomenon: SFT only on seeds 100-102 (their own splits), committed; "
        "2. compare: every arm on seeds 0-2; 3. report",
        "phenomenon": "SFT leaves out facts the base knows: per seed, the mean over held-out "
        "countries of (share of the answer's facts the base completes by cloze) - (SFT "
        "completeness); shown when the 95 % t interval over the 3 seeds lies wholly above 0. "
        "If not shown, the comparison still runs and is reported as testing nothing",
        "claims": {
            "1_aspects": "KnowTuning beats SFT on completeness and factuality (1 - error "
            "rate): the 95 % paired t interval over seeds of KT - SFT lies above 0 for each; "
            "logicality (facts in the answer's order) reported, with no dependency chain here",
            "2_more_correct_fewer_errors": "correct facts per answer rise and the error rate "
            "falls (both paired intervals exclude 0 in that direction)",
            "3_ablations": "KnowTuning against sft_ka (-KC) and sft_kc (-KA), same intervals; "
            "the per-aspect negative ablations are the tiny lane's, not run here (CPU budget)",
            "4_unseen": "claim 1 on test_unseen (question phrasings never trained)",
            "equivalence": "where an interval includes 0, TOST of KT - SFT within +-0.05 says "
            "whether the arms are equivalent",
        },
        "seeds": {"phenomenon": list(PHENOMENON_SEEDS), "compare": list(COMPARE_SEEDS)},
        "statistics": "mean +- sample std (ddof 1) over seeds; paired t interval of per-seed "
        "differences (experiments.stats)",
    }


def main(argv: list[str] | None = None) -> int:
    return stage_cli(
        argv,
        "experiments.knowtuning.smollm2_lane",
        (WORK, RESULTS),
        preregistration,
        LaneConfig(),
        run_seed,
        ARMS,
        write_report,
    )


if __name__ == "__main__":
    raise SystemExit(main())
