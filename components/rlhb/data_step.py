"""rlhb_data: logged ⟨query, response, behaviour⟩ triplets (the simulator's, or the user's),
validated, binned and rendered as behaviour text; the behaviour-derived preference pairs.

    python -m components.rlhb data --out data/rlhb --reports reports/rlhb/data

Outputs in `out_dir`:
- logs.jsonl: id, query, response, behaviour (raw counts), levels ({metric: 1..N}),
  behaviour_text, and, from the simulator, topic;
- binning.json: per metric, the N + 1 log1p edges of its levels (fitted on these logs);
- preferences.jsonl: the project's preference format (components.common.preference), pairs of
  two logged responses to the same query, chosen = the higher observed
  (likes - dislikes) / (views + clicks + 1); the input of pairwise RLHF;
- eval_queries.jsonl: the queries the evaluation asks, each with `logged` (the simulator: every
  query of the service, the held-out template's not logged; the user's logs: every distinct
  query, all logged);
- world.json (simulator only): its settings, so that evaluation can score the hidden utility.

The user's logs (rlhb_data.logs_file) replace the simulator: the format is in logs.py."""

from __future__ import annotations

import logging
import random
from collections import defaultdict
from pathlib import Path

from components.common.cli import path_arguments, step_main, step_parser
from components.common.io import ProjectError, atomic_path, write_json, write_jsonl
from components.common.params import Profile
from components.common.repro import seed_everything
from components.common.tracking import step_run
from components.rlhb import behaviour as bh
from components.rlhb import logs as logs_format
from components.rlhb import simulator
from components.rlhb.params import RlhbDataParams, RlhbDataStep

log = logging.getLogger(__name__)


def observed_score(behaviour: dict[str, float]) -> float:
    """The logged (likes - dislikes) / (views + clicks + 1): the pairs' ranking signal."""
    return (behaviour["likes"] - behaviour["dislikes"]) / (
        behaviour["views"] + behaviour["clicks"] + 1
    )


def preference_pairs(records: list[dict], seed: int) -> list[dict]:
    """Each query's logs shuffled and paired two by two (every log in at most one pair); a pair
    is kept when the texts and the observed scores differ, the higher score chosen.
    `meta.margin` is the observed difference."""
    rng = random.Random(seed)
    by_query: dict[str, list[dict]] = defaultdict(list)
    for r in records:
        by_query[r["query"]].append(r)
    pairs = []
    for query, group in by_query.items():
        group = rng.sample(group, len(group))
        for a, b in zip(group[::2], group[1::2], strict=False):
            sa, sb = observed_score(a["behaviour"]), observed_score(b["behaviour"])
            if sa == sb or a["response"] == b["response"]:
                continue
            chosen, rejected = (a, b) if sa > sb else (b, a)
            pairs.append(
                {
                    "id": f"pair-{len(pairs)}",
                    "prompt": query,
                    "chosen": chosen["response"],
                    "rejected": rejected["response"],
                    "meta": {"margin": round(abs(sa - sb), 6)},
                }
            )
    return pairs


def load(params: RlhbDataParams) -> tuple[list[dict], list[dict], str]:
    """(logs, evaluation queries, source name)."""
    if params.logs_file is None:
        records, service = simulator.simulate_logs(params)
        return records, service, "rlhb:simulator"
    records = logs_format.read_logs(Path(params.logs_file), params.metrics)
    queries = [{"query": q, "logged": True} for q in dict.fromkeys(r["query"] for r in records)]
    return records, queries, params.logs_file


def run(params: RlhbDataParams, profile: Profile, out_dir: Path, report_dir: Path) -> dict:
    from components.common.preference import validate_preferences
    from components.common.validation import validate_and_report

    seed_everything(params.seed, with_torch=False)
    with step_run("rlhb_data", profile, params):
        records, eval_queries, source = load(params)
        rows = logs_format.rows_of(records, params.metrics)
        validate_and_report(
            rows,
            logs_format.expectations(params.metrics),
            source,
            report_dir / "logs.json",
            logs_format.SUITE_NAME,
            ["line", "id", "query", "response", *params.metrics],
        )
        binning = bh.fit_binning(
            {m: [r["behaviour"][m] for r in records] for m in params.metrics},
            params.bins,
            params.bin_mode,
        )
        for r in records:
            r.pop("line", None)
            r["levels"] = bh.levels(r["behaviour"], binning)
            r["behaviour_text"] = bh.behaviour_text(r["levels"], params.bins)
        pairs = []
        if {"views", "clicks", "likes", "dislikes"} <= set(params.metrics):
            pairs = preference_pairs(records, params.seed)
            if pairs:
                validate_preferences(pairs, f"{source} (behaviour-derived pairs)")
        if not eval_queries:
            raise ProjectError("no evaluation queries", file=source, field="query")
        with atomic_path(out_dir) as tmp:
            tmp.mkdir()
            write_jsonl(tmp / "logs.jsonl", records)
            write_json(tmp / "binning.json", binning)
            write_jsonl(tmp / "preferences.jsonl", pairs)
            write_jsonl(tmp / "eval_queries.jsonl", eval_queries)
            if params.logs_file is None:
                write_json(tmp / "world.json", params.model_dump(mode="json"))
        import mlflow

        metrics = {
            "logs": float(len(records)),
            "preference_pairs": float(len(pairs)),
            "eval_queries": float(len(eval_queries)),
        }
        if params.logs_file is None:
            scores = [simulator.true_score(r["topic"], r["response"], params) for r in records]
            metrics["logged_true_score"] = sum(scores) / len(scores)
        mlflow.log_metrics(metrics)
        log.info("rlhb_data wrote %s: %s", out_dir, metrics)
        return metrics


def main(argv: list[str] | None = None) -> int:
    parser = step_parser("components.rlhb data", __doc__, RlhbDataStep)
    path_arguments(
        parser,
        "outputs",
        out=("data/rlhb", "logs, binning, preference pairs, evaluation queries"),
        reports=("reports/rlhb/data", "the validation result"),
    )
    args = parser.parse_args(argv)
    return step_main(
        "rlhb_data",
        args,
        RlhbDataStep,
        lambda p: run(p.rlhb_data, p.profile, args.out, args.reports),
    )
