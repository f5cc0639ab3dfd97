"""rlhb_evaluate: every generator answers the evaluation queries under b* (sampled, as trained);
the answers are scored by the simulator's hidden utility (the user's logs: by a judge, a behaviour
classifier trained on all the logs, reward-shaped as RLHBC's); the RLHB generator registered as
`rlhb-generator` (champion only on a better score).

    python -m components.rlhb evaluate --data data/rlhb --model models/rlhb

Metrics per arm: `<arm>.score` (mean true score, or the judge's) on the logged queries,
`<arm>.score_unseen` on the queries never logged (the simulator's held-out template), and from the
simulator the shares of answers with the topic word, a good length and a repetition (the hidden
utility's causes); for RLHB, `rlhb.like_level_<l>` (the score when conditioned on likes l/N,
dislikes (N+1-l)/N, the rest as b*) and their Spearman correlation with l,
`rlhb.level_spearman` (V2)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from components.common.cli import path_arguments, step_main, step_parser
from components.common.io import read_json, read_jsonl, write_json
from components.common.params import Profile
from components.common.repro import seed_everything
from components.common.tracking import register_and_promote, step_run
from components.rlhb import behaviour as bh
from components.rlhb.params import RlhbDataParams, RlhbParams, RlhbStep

if TYPE_CHECKING:
    import torch

# torch is imported by the functions that use it: `--help` and a params error load no ML library
log = logging.getLogger(__name__)
REGISTERED_NAME = "rlhb-generator"
DEPLOYED = "rlhb"


def quality_shares(topics: list[str], responses: list[str]) -> dict[str, float]:
    """The shares of answers with the topic word, a length in 8..16 words, a repeated word."""
    from components.rlhb import simulator

    qualities = [simulator.quality(t, r) for t, r in zip(topics, responses, strict=True)]
    n = len(qualities)
    return {
        "topic_share": sum(q.topic for q in qualities) / n,
        "length_ok_share": sum(q.length_ok for q in qualities) / n,
        "repetition_share": sum(q.repetition for q in qualities) / n,
    }


def level_behaviours(b_star: str, bins: int) -> dict[int, str]:
    """b* with likes l/N and dislikes (N + 1 - l)/N, for l = 1..N."""
    levels = bh.parse_behaviour_text(b_star)
    return {
        like: bh.behaviour_text(levels | {"likes": like, "dislikes": bins + 1 - like}, bins)
        for like in range(1, bins + 1)
    }


def answers(
    model: torch.nn.Module,
    tokenizer: Any,
    queries: list[str],
    behaviour: str | None,
    params: RlhbParams,
) -> list[str]:
    """`eval_samples` sampled answers per query (query-major)."""
    from components.rlhb import policy as pol

    prompts = [pol.generator_prompt(q, behaviour) for q in queries]
    return pol.sample(
        model, tokenizer, prompts, params.eval_samples, params.max_new_tokens, params.temperature
    ).texts


def scorer_of(data_dir: Path, params: RlhbParams, tokenizer: Any):
    """(query list, response list) -> per-answer scores: the hidden utility, or the judge's."""
    from components.rlhb import simulator

    if (data_dir / "world.json").is_file():
        world = RlhbDataParams.model_validate(read_json(data_dir / "world.json"))
        topic_of = {q["query"]: q["topic"] for q in simulator.queries(world)}
        return lambda qs, rs: [
            simulator.true_score(topic_of[q], r, world) for q, r in zip(qs, rs, strict=True)
        ], topic_of
    from components.rlhb import baselines
    from components.rlhb.adversarial import Triplet

    logs = read_jsonl(data_dir / "logs.jsonl")
    binning = {m: read_json(data_dir / "binning.json")[m] for m in logs[0]["levels"]}
    judge, _ = baselines.behaviour_classifier(tokenizer, logs, binning, params)
    return lambda qs, rs: judge(
        [Triplet(q, r, "") for q, r in zip(qs, rs, strict=True)]
    ).tolist(), None


def plots(metrics: dict[str, float], arms: list[str], report_dir: Path, simulated: bool) -> list:
    """score.png (each arm under b*, with its logged-query and never-logged scores), causes.png
    (the hidden utility's causes per arm, simulator only), like_levels.png (V2)."""
    from components.common.plots import grouped_bar_plot, line_plot

    scores = {
        where: {a: (metrics[f"{a}.{key}"], 0.0) for a in arms if f"{a}.{key}" in metrics}
        for where, key in (("logged queries", "score"), ("never-logged", "score_unseen"))
    }
    pngs = [
        grouped_bar_plot(
            {where: values for where, values in scores.items() if values},
            report_dir / "score.png",
            title="rlhb: answers under b*",
            ylabel="hidden utility (true score)" if simulated else "judge's shaped reward",
        )
    ]
    if simulated:
        causes = {
            cause: {a: (metrics[f"{a}.{cause}_share"], 0.0) for a in arms}
            for cause in ("topic", "length_ok", "repetition")
        }
        pngs.append(
            grouped_bar_plot(
                causes,
                report_dir / "causes.png",
                title="rlhb: the hidden utility's causes in the answers",
                ylabel="share of answers",
            )
        )
    levels = [k for k in metrics if k.startswith(f"{DEPLOYED}.like_level_")]
    if levels:
        pngs.append(
            line_plot(
                {DEPLOYED: (list(range(1, len(levels) + 1)), [metrics[k] for k in levels])},
                report_dir / "like_levels.png",
                title="rlhb: conditioned like level against the realised score",
                xlabel="likes level in the prompt",
                ylabel="score",
            )
        )
    return pngs


def run(
    params: RlhbParams, profile: Profile, data_dir: Path, model_dir: Path, report_dir: Path
) -> dict[str, float]:
    import mlflow
    import torch
    from scipy.stats import spearmanr

    from components.common.models import load_causal_lm
    from components.common.serving import log_answering_model
    from components.rlhb.policy import generator_prompt

    seed_everything(params.seed)
    with step_run("rlhb_evaluate", profile, params):
        info = read_json(model_dir / "generators.json")
        evaluation = read_jsonl(data_dir / "eval_queries.jsonl")
        queries = [q["query"] for q in evaluation if q["logged"]]
        unseen = [q["query"] for q in evaluation if not q["logged"]]
        asked = [q for q in queries for _ in range(params.eval_samples)]
        metrics: dict[str, float] = {}
        samples: dict[str, list[str]] = {}
        score, topic_of = None, None
        # V2 varies likes and dislikes: only where the logs have both
        controllable = {"likes", "dislikes"} <= set(bh.parse_behaviour_text(info["b_star"]))

        def mean_score(model, tokenizer, questions: list[str], behaviour: str | None) -> float:
            torch.manual_seed(params.seed)
            texts = answers(model, tokenizer, questions, behaviour, params)
            values = score([q for q in questions for _ in range(params.eval_samples)], texts)
            return sum(values) / len(values)

        for arm, arm_info in info["arms"].items():
            model, tokenizer = load_causal_lm(model_dir / arm)
            if score is None:
                score, topic_of = scorer_of(data_dir, params, tokenizer)
            behaviour = info["b_star"] if arm_info["conditioning"] else None
            torch.manual_seed(params.seed)
            samples[arm] = answers(model, tokenizer, queries, behaviour, params)
            values = score(asked, samples[arm])
            metrics[f"{arm}.score"] = sum(values) / len(values)
            if unseen:
                metrics[f"{arm}.score_unseen"] = mean_score(model, tokenizer, unseen, behaviour)
            if topic_of is not None:
                shares = quality_shares([topic_of[q] for q in asked], samples[arm])
                metrics |= {f"{arm}.{k}": v for k, v in shares.items()}
            if arm == DEPLOYED:
                deployed = (model, tokenizer)
            if arm == DEPLOYED and controllable:
                by_level = {
                    like: mean_score(model, tokenizer, queries, text)
                    for like, text in level_behaviours(info["b_star"], info["bins"]).items()
                }
                metrics |= {f"{arm}.like_level_{k}": v for k, v in by_level.items()}
                metrics[f"{arm}.level_spearman"] = float(
                    spearmanr(list(by_level), list(by_level.values())).statistic
                )
        write_json(report_dir / "samples.json", {a: s[:20] for a, s in samples.items()})
        pngs = plots(metrics, list(info["arms"]), report_dir, topic_of is not None)
        for png in pngs:
            mlflow.log_artifact(str(png), artifact_path="plots")
        mlflow.log_artifact(str(report_dir / "samples.json"))
        mlflow.log_metrics(metrics)
        model, tokenizer = deployed
        instruction = generator_prompt("{prompt}", info["b_star"])
        model_info = log_answering_model(model, tokenizer, params.max_new_tokens, instruction)
        metrics |= register_and_promote(
            model_info.model_uri,
            REGISTERED_NAME,
            "b_star_score",
            metrics[f"{DEPLOYED}.score"],
            tags={"b_star": info["b_star"]},
        )
        log.info(
            "rlhb_evaluate: %s",
            {a: round(metrics[f"{a}.score"], 3) for a in info["arms"]},
        )
        return metrics


def main(argv: list[str] | None = None) -> int:
    parser = step_parser("components.rlhb evaluate", __doc__, RlhbStep)
    path_arguments(
        parser,
        "inputs",
        data=("data/rlhb", "rlhb_data's output"),
        model=("models/rlhb", "rlhb_train's output"),
    )
    path_arguments(
        parser, "outputs", reports=("reports/rlhb/evaluate", "plots and sampled answers")
    )
    args = parser.parse_args(argv)
    return step_main(
        "rlhb_evaluate",
        args,
        RlhbStep,
        lambda p: run(p.rlhb, p.profile, args.data, args.model, args.reports),
    )
