"""ILP on the real SmolLM2-135M-Instruct (CPU, well under 20 minutes):

    python -m experiments.ilp.real_model [--work .cache/ilp_real]

1. Probe the base on world capitals ("The capital of France is" over every capital in the list)
   and keep the countries it knows.
2. A small SFT set: known capitals (control), known countries relabelled with another capital
   (planted C2: the label contradicts what the base knows) and invented countries with invented
   capitals (planted C1: knowledge the base cannot have).
3. LoRA SFT with the finetune step (profile smollm2), then the ilp_diagnosis step.
Writes docs/results/ilp_real_model.json and the tables between the real-model markers of
docs/results/ilp.md."""

from __future__ import annotations

import argparse
import logging
import os
import random
import time
from pathlib import Path
from typing import Any

import numpy as np

from components.common.io import atomic_path, read_json, write_json, write_jsonl
from components.common.models import load_causal_lm, materialize_smollm2
from components.common.params import LoraParams
from components.epi_finetune import step as finetune
from components.epi_finetune.params import FinetuneParams
from components.ilp_diagnosis import facts
from components.ilp_diagnosis import step as ilp_step
from components.ilp_diagnosis.params import IlpParams
from experiments.ilp import report

log = logging.getLogger(__name__)
REPO = Path(__file__).resolve().parents[2]

CAPITALS = {
    "France": "Paris", "Germany": "Berlin", "Italy": "Rome", "Spain": "Madrid", "Japan": "Tokyo",
    "Egypt": "Cairo", "Peru": "Lima", "Kenya": "Nairobi", "Canada": "Ottawa", "Chile": "Santiago",
    "Norway": "Oslo", "Greece": "Athens", "Poland": "Warsaw", "Cuba": "Havana", "Iran": "Tehran",
    "Russia": "Moscow", "China": "Beijing", "India": "New Delhi", "Mexico": "Mexico City",
    "Argentina": "Buenos Aires", "Portugal": "Lisbon", "Sweden": "Stockholm",
    "Finland": "Helsinki", "Denmark": "Copenhagen", "Austria": "Vienna", "Hungary": "Budapest",
    "Ireland": "Dublin", "Belgium": "Brussels", "Thailand": "Bangkok", "Vietnam": "Hanoi",
    "South Korea": "Seoul", "Indonesia": "Jakarta", "Turkey": "Ankara", "Australia": "Canberra",
    "Brazil": "Brasilia", "Colombia": "Bogota", "Venezuela": "Caracas", "Morocco": "Rabat",
    "Nigeria": "Abuja", "Ethiopia": "Addis Ababa", "Ukraine": "Kyiv", "Czech Republic": "Prague",
    "Switzerland": "Bern", "Netherlands": "Amsterdam", "Philippines": "Manila",
    "Pakistan": "Islamabad", "Iraq": "Baghdad", "Saudi Arabia": "Riyadh",
}  # fmt: skip
FICTIONAL = {
    "Zorbania": "Velmora", "Quelvaria": "Drusk", "Ostrelia": "Pamirun", "Vandoria": "Kelsith",
    "Marovia": "Tulsk", "Brennland": "Orvale", "Istravia": "Gonmere", "Pelagonia": "Sirath",
    "Dravenia": "Lusk", "Korvalia": "Emberfell", "Tessaria": "Navrin", "Ulmaria": "Corvath",
    "Felsmark": "Ardun", "Nerovia": "Halvik", "Yskarra": "Belmont Reach", "Calduria": "Threx",
}  # fmt: skip
QUESTION = "What is the capital of {}?"


def known_countries(model_dir: Path) -> dict[str, float]:
    """country -> the base's probability of its capital among all capitals (cloze probe)."""
    model, tokenizer = load_causal_lm(model_dir)
    records = [
        {"id": c, "task": "qa", "prompt": QUESTION.format(c), "response": cap}
        for c, cap in CAPITALS.items()
    ]
    candidates = facts.candidate_values(records)
    probes = [(c, "capital", candidates["capital"]) for c in CAPITALS]
    probs = facts.cloze_probs(model, tokenizer, probes, max_length=64, batch_size=64)
    return {
        c: float(p[candidates["capital"].index(CAPITALS[c])])
        for c, p in zip(CAPITALS, probs, strict=True)
    }


def build_records(knowledge: dict[str, float], seed: int = 0) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    known = sorted((c for c, p in knowledge.items() if p >= 0.5), key=lambda c: -knowledge[c])
    n_conflict = len(known) // 3
    conflict = set(rng.sample(known, n_conflict))
    records = []
    for country in known:
        answer, cause = CAPITALS[country], "control"
        if country in conflict:
            answer = rng.choice([v for k, v in CAPITALS.items() if k != country])
            cause = "C2"
        records.append((country, answer, cause))
    records += [(c, cap, "C1") for c, cap in FICTIONAL.items()]
    rng.shuffle(records)
    return [
        {
            "id": f"capital-{i:03d}",
            "task": "capital_qa",
            "stage": 0,
            "prompt": QUESTION.format(country),
            "response": answer,
            "meta": {"planted_cause": cause},
        }
        for i, (country, answer, cause) in enumerate(records)
    ]


def write_sft_data(data: Path, records: list[dict[str, Any]]) -> None:
    """The lane's data folder: every record trains, the first 8 are the finetune step's eval set,
    and no pretraining corpus (the base is SmolLM2 as shipped)."""
    with atomic_path(data) as tmp:
        tmp.mkdir()
        write_jsonl(tmp / "train.jsonl", records)
        write_jsonl(tmp / "eval.jsonl", records[:8])
        (tmp / "corpus.txt").write_text("", encoding="utf-8")


def lora_sft_params(steps: int) -> FinetuneParams:
    return FinetuneParams(
        method="full",
        schedule="mixed",
        track_drift=False,
        lora=LoraParams(enabled=True, r=8, alpha=16),
        max_steps=steps,
        batch_size=8,
        learning_rate=5e-4,
        max_length=64,
        eval_every=10**6,
        eval_per_task=8,
        dynamics_every=max(1, steps // 6),
        save_steps=10**6,
        logging_steps=8,
        resume=False,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m experiments.ilp.real_model")
    parser.add_argument("--work", type=Path, default=REPO / ".cache/ilp_real")
    parser.add_argument("--out", type=Path, default=REPO / "docs/results")
    parser.add_argument("--steps", type=int, default=48)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    start = time.time()
    work, out = args.work.resolve(), args.out.resolve()
    work.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{work / 'mlflow.db'}")
    base = materialize_smollm2(REPO / ".cache/smollm2")
    os.chdir(work)  # Trainer checkpoints land in the work folder

    knowledge = known_countries(base)
    records = build_records(knowledge)
    data = work / "data"
    write_sft_data(data, records)
    params = lora_sft_params(args.steps)
    finetune.run(params, "smollm2", data, base, work / "sft", work / "reports/sft")
    ilp = IlpParams(max_length=64, max_new_tokens=12)
    ilp_step.run(
        ilp, "smollm2", data, base, work / "sft", work / "reports/sft/dynamics.csv", work / "ilp"
    )
    planted = [r["meta"]["planted_cause"] for r in records]
    result = {
        "records": len(records),
        "known": sum(p != "C1" for p in planted),
        "planted": {c: planted.count(c) for c in ("control", "C1", "C2")},
        "base_knowledge": knowledge,
        "finetune": params.model_dump(mode="json"),
        "summary": read_json(work / "ilp/summary.json"),
        "truth": read_json(work / "ilp/ground_truth.json"),
        "seconds": time.time() - start,
        "mean_base_knowledge": float(np.mean(list(knowledge.values()))),
    }
    write_json(out / "ilp_real_model.json", result)
    report.write_real_model_section(out, result)
    print(report.real_model_tables(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
