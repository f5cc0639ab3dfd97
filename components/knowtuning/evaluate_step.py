"""knowtuning_evaluate: completeness, factuality and logicality of each model's long answers.

    python -m components.knowtuning evaluate --data data/knowtuning \
        --models sft=models/knowtuning/sft ka=models/knowtuning/ka kt=models/knowtuning/kt \
        --reports reports/knowtuning/evaluate

Every model answers the held-out questions (test.jsonl, and test_unseen.jsonl: phrasings never
trained) greedily, and, as a check that SFT took, the training entities of eval.jsonl; each
answer is scored against its record's facts (`metrics.py`: parsed by the
world's templates for world records, matched as sentences for the user's). The last model named
(KnowTuning) is logged and registered as `knowtuning-model@challenger`; `champion` moves when its
knowledge score (mean of completeness and 1 - error rate on test) beats the champion's."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from components.common.cli import named_paths, path_arguments, step_main, step_parser
from components.common.io import ProjectError, read_jsonl, write_jsonl
from components.common.params import Profile
from components.common.repro import seed_everything
from components.common.tracking import step_run
from components.knowtuning.metrics import entity_scores, listed_scores, mean_scores
from components.knowtuning.params import KnowTuningParams, KnowTuningStep
from components.knowtuning.world import Entity, Fact

log = logging.getLogger(__name__)
REGISTERED_NAME = "knowtuning-model"
ASPECTS = ("completeness", "correct_facts", "error_rate", "logicality", "kendall_tau")


def score(answer: str, record: dict[str, Any]) -> dict[str, Any]:
    meta = record["meta"]
    if "chain" in meta:
        entity = Entity(meta["entity"], meta["kind"], tuple(Fact(*c) for c in meta["chain"]))
        return entity_scores(answer, entity)
    return listed_scores(answer, meta["facts"])


def knowledge_score(scores: dict[str, float]) -> float:
    """The registry's single number: mean of completeness and (1 - error rate)."""
    return (scores["completeness"] + 1.0 - scores["error_rate"]) / 2.0


def answer_split(model: Any, tokenizer: Any, records: list[dict], params: KnowTuningParams):
    from components.common.sft import greedy_record_answers

    return greedy_record_answers(
        model, tokenizer, records, params.evaluate.max_new_tokens, params.evaluate.batch_size
    )


def run(
    params: KnowTuningParams,
    profile: Profile,
    data_dir: Path,
    models: dict[str, Path],
    report_dir: Path,
) -> dict[str, float]:
    import mlflow

    from components.common.models import load_causal_lm
    from components.common.plots import grouped_bar_plot
    from components.common.serving import log_answering_model
    from components.common.tracking import register_and_promote

    seed_everything(params.seed)
    splits = {
        split: read_jsonl(data_dir / f"{split}.jsonl")
        for split in ("test", "test_unseen", "eval")
        if (data_dir / f"{split}.jsonl").is_file()
    }
    if not splits.get("test"):
        raise ProjectError("no test records", file=data_dir / "test.jsonl")
    with step_run("knowtuning_evaluate", profile, params.evaluate):
        metrics: dict[str, float] = {}
        predictions = []
        for name, model_dir in models.items():
            model, tokenizer = load_causal_lm(model_dir)
            for split, records in splits.items():
                answers = answer_split(model, tokenizer, records, params)
                scores = [score(a, r) for a, r in zip(answers, records, strict=True)]
                means = mean_scores(scores)
                metrics |= {f"{split}.{name}.{k}": means[k] for k in ASPECTS}
                predictions += [
                    {"model": name, "split": split, "id": r["id"], "answer": a, **s}
                    for r, a, s in zip(records, answers, scores, strict=True)
                ]
        report_dir.mkdir(parents=True, exist_ok=True)
        write_jsonl(report_dir / "predictions.jsonl", predictions)
        png = grouped_bar_plot(
            {
                aspect: {name: (metrics[f"test.{name}.{aspect}"], 0.0) for name in models}
                for aspect in ("completeness", "error_rate", "logicality")
            },
            report_dir / "aspects.png",
            title="Held-out answers: completeness, error rate, logicality",
            ylabel="score",
        )
        mlflow.log_metrics({k: v for k, v in metrics.items() if v == v})  # NaN: undefined
        mlflow.log_artifact(str(png), artifact_path="plots")
        mlflow.log_artifact(str(report_dir / "predictions.jsonl"))
        final = list(models)[-1]
        value = knowledge_score({k: metrics[f"test.{final}.{k}"] for k in ASPECTS})
        metrics[f"knowledge_score.{final}"] = value
        model, tokenizer = load_causal_lm(models[final])
        info = log_answering_model(model, tokenizer, params.evaluate.max_new_tokens)
        metrics |= register_and_promote(
            info.model_uri, REGISTERED_NAME, "knowledge_score", value, tags={"profile": profile}
        )
        log.info("knowtuning_evaluate: %s", metrics)
        # logicality and tau are undefined when no answer states two linked facts: left out
        return {k: v for k, v in metrics.items() if v == v}


def main(argv: list[str] | None = None) -> int:
    parser = step_parser("components.knowtuning evaluate", __doc__, KnowTuningStep)
    path_arguments(parser, "inputs", data=("data/knowtuning", "knowtuning_data's output"))
    parser.add_argument(
        "--models",
        nargs="+",
        default=["sft=models/knowtuning/sft", "ka=models/knowtuning/ka", "kt=models/knowtuning/kt"],
        help="name=path of each model to score; the last is registered",
    )
    path_arguments(parser, "outputs", reports=("reports/knowtuning/evaluate", "answers, plot"))
    args = parser.parse_args(argv)
    models = named_paths(args.models)
    return step_main(
        "knowtuning_evaluate",
        args,
        KnowTuningStep,
        lambda p: run(p.knowtuning, p.profile, args.data, models, args.reports),
    )
