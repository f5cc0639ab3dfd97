"""knowtuning_compare: coarse-grained knowledge comparison (KC).

    python -m components.knowtuning compare --data data/knowtuning --init models/knowtuning/ka \
        --pairs data/knowtuning_kc --out models/knowtuning/kt --reports reports/knowtuning/compare

For every training answer, one worse answer per aspect of `kc.aspects`: facts deleted
(completeness), falsified (factuality) or shuffled (logicality); the answer is chosen, the worse
one rejected. Then DPO with an SFT term on the chosen answers (`components.common.preference`)
from the `init` model (the KA model in the paper's recipe; the SFT model for the "KC without KA"
ablation), which is also the reference. Outputs: pairs.jsonl in `pairs_dir` (the project's
preference format; `meta.aspect` names the negative's aspect) and the KnowTuning model."""

from __future__ import annotations

import contextlib
import logging
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

from components.common.cli import path_arguments, step_main, step_parser
from components.common.io import atomic_path, read_json, read_jsonl, write_jsonl
from components.common.params import Profile
from components.common.repro import seed_everything
from components.common.tracking import step_run
from components.knowtuning import negatives, world
from components.knowtuning.params import KcParams, KnowTuningParams, KnowTuningStep

log = logging.getLogger(__name__)
Reviser = Callable[[str, random.Random], str | None]


def comparison_pairs(
    record: dict[str, Any], params: KcParams, revise: Reviser, rng: random.Random
) -> list[dict[str, Any]]:
    """The preference records of one training answer: one per aspect it allows (deleting and
    shuffling need two facts, falsifying a fact the reviser can revise)."""
    facts = record["meta"]["facts"]
    worse: dict[str, list[str]] = {}
    if "completeness" in params.aspects and len(facts) >= 2:
        worse["completeness"] = negatives.delete(facts, params.delete_ratio, rng)
    if "factuality" in params.aspects:
        count = rng.randint(*params.revised_facts)
        with contextlib.suppress(ValueError):  # no fact of this answer can be revised
            worse["factuality"] = negatives.falsify(facts, count, rng, revise)
    if "logicality" in params.aspects and len(facts) >= 2:
        worse["logicality"] = negatives.shuffle(facts, rng)
    return [
        {
            "id": f"{record['id']}-{aspect}",
            "prompt": record["prompt"],
            "chosen": " ".join(facts),
            "rejected": " ".join(rejected),
            "meta": {"aspect": aspect, "of": record["id"]},
        }
        for aspect, rejected in worse.items()
    ]


def reviser_for(record: dict[str, Any], pools: dict[str, list[str]], generate: Reviser) -> Reviser:
    """The world's value swap for a world record, the language model's revision otherwise."""
    return (
        world.value_reviser(record["meta"]["entity"], pools)
        if "chain" in record["meta"]
        else generate
    )


REVISION_PROMPT = "Change one detail of this statement so that it becomes false: {fact}"


def generation_reviser(model: Any, tokenizer: Any, max_new_tokens: int = 48) -> Reviser:
    """A language model revises the fact (greedy, first line): falsification for real data."""
    from components.common.sft import greedy_answers

    def revise(fact: str, rng: random.Random) -> str | None:
        (revised,) = greedy_answers(
            model, tokenizer, [REVISION_PROMPT.format(fact=fact)], max_new_tokens, batch_size=1
        )
        return revised if revised and revised != fact else None

    return revise


def run(
    params: KnowTuningParams,
    profile: Profile,
    data_dir: Path,
    init_dir: Path,
    pairs_dir: Path,
    out_dir: Path,
    report_dir: Path,
) -> dict[str, float]:
    import mlflow

    from components.common.preference import train_preferences

    kc = params.kc
    seed_everything(params.seed)
    with step_run("knowtuning_compare", profile, kc):
        records = read_jsonl(data_dir / "train.jsonl")
        pools = read_json(data_dir / "world.json")["pools"]
        generate = _lazy_generation_reviser(init_dir)
        rng = random.Random(params.seed)
        pairs = [
            pair
            for record in records
            for pair in comparison_pairs(record, kc, reviser_for(record, pools, generate), rng)
        ]
        metrics = train_preferences(
            kc.dpo, init_dir, pairs, out_dir, report_dir, source="knowtuning:kc pairs"
        )
        with atomic_path(pairs_dir) as tmp:
            tmp.mkdir()
            write_jsonl(tmp / "pairs.jsonl", pairs)
        for aspect in kc.aspects:
            metrics[f"pairs.{aspect}"] = float(sum(p["meta"]["aspect"] == aspect for p in pairs))
        mlflow.log_metrics({k: v for k, v in metrics.items() if k.startswith("pairs.")})
        log.info("knowtuning_compare: %d pairs, %s", len(pairs), metrics)
        return metrics


def _lazy_generation_reviser(model_dir: Path) -> Reviser:
    """The model is loaded on the first revision asked for (world data never asks)."""
    loaded: list[Reviser] = []

    def revise(fact: str, rng: random.Random) -> str | None:
        if not loaded:
            from components.common.models import load_causal_lm

            loaded.append(generation_reviser(*load_causal_lm(model_dir)))
        return loaded[0](fact, rng)

    return revise


def main(argv: list[str] | None = None) -> int:
    parser = step_parser("components.knowtuning compare", __doc__, KnowTuningStep)
    path_arguments(
        parser,
        "inputs",
        data=("data/knowtuning", "knowtuning_data's output (train.jsonl, world.json)"),
        init=("models/knowtuning/ka", "the model KC starts from and compares against"),
    )
    path_arguments(
        parser,
        "outputs",
        pairs=("data/knowtuning_kc", "pairs.jsonl: the comparison set"),
        out=("models/knowtuning/kt", "the KnowTuning model"),
        reports=("reports/knowtuning/compare", "DPO curves"),
    )
    args = parser.parse_args(argv)
    return step_main(
        "knowtuning_compare",
        args,
        KnowTuningStep,
        lambda p: run(
            p.knowtuning, p.profile, args.data, args.init, args.pairs, args.out, args.reports
        ),
    )
