"""RLHB on the simulated search service (spec §tiny CPU validation), in the order
experiments/lanes.py fixes:

    python -m experiments.rlhb.benchmark prereg      # preregistration.json (commit it first)
    python -m experiments.rlhb.benchmark phenomenon  # SFT and D's warm-up alone, seeds 100-102
    python -m experiments.rlhb.benchmark compare     # every arm, seeds 0 1 2
    python -m experiments.rlhb.benchmark report      # docs/results/rlhb.md

Each seed is a new world (20k logs, the spec's size) and a new SFT generator and discriminator,
shared by every arm of that seed (components.rlhb.arms). Every generator answers the service's
120 logged queries `EVAL_SAMPLES` times under b*, sampled at temperature 1 as it was trained, and
the 30 queries of the never-logged template apart; the simulator's hidden utility scores the
answers. Nothing in training reads it."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from experiments.lanes import COMPARE_SEEDS, PHENOMENON_SEEDS, stage_cli

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "docs/results/rlhb"
WORK = REPO / ".cache/rlhb_benchmark"
# every arm: the product's (train_step) and the spec's sweeps of rho and n
ARMS = (
    "sft",
    "rlhb",
    "no_bootstrap",
    "rho_0.5",
    "rollouts_1",
    "no_conditioning",
    "rlhbc",
    "rlhf",
)
PHENOMENON_ARMS = ("sft",)
EVAL_SAMPLES = 8
HISTORY_EVERY = 5  # the curves keep every 5th RL iteration


@dataclass(frozen=True)
class BenchConfig:
    """The spec's sizes (20k logs, 300 RL iterations of 16 prompts x 4 rollouts)."""

    logs: int = 20_000
    sft_steps: int = 600
    iterations: int = 300
    discriminator_warmup: int = 1500


def world_bounds() -> tuple[float, float]:
    """The simulator's worst and best true score (all defects; none)."""
    from components.rlhb import simulator
    from components.rlhb.params import RlhbDataParams

    world = RlhbDataParams()
    worst = simulator.rates(simulator.Quality(False, False, True))
    best = simulator.rates(simulator.Quality(True, True, False))
    scale = world.mean_views * (1 + world.click_rate)
    return (worst[0] - worst[1]) / scale, (best[0] - best[1]) / scale


def arm_params(params, arm: str):
    if arm == "rho_0.5":
        return params.model_copy(update={"bootstrap_ratio": 0.5})
    if arm == "rollouts_1":
        return params.model_copy(update={"rollouts": 1})
    return params


def evaluate(
    setup,
    model,
    conditioned: bool,
    queries: list[dict],
    like_levels: bool,
    samples: int = EVAL_SAMPLES,
) -> dict:
    """The arm's answers under b* on the logged queries (`score`, the causes' shares, a few
    examples) and on the never-logged template (`score_unseen`); with `like_levels`, the score
    conditioned on each like level (V2)."""
    import torch

    from components.rlhb.evaluate_step import answers, level_behaviours, quality_shares

    params = setup.params.model_copy(update={"eval_samples": samples})
    behaviour = setup.b_star if conditioned else None

    def sampled(questions: list[str], text: str | None) -> tuple[list[str], list[str]]:
        torch.manual_seed(setup.params.seed)
        asked = [q for q in questions for _ in range(samples)]
        return asked, answers(model, setup.tokenizer, questions, text, params)

    logged = [q["query"] for q in queries if q["logged"]]
    unseen = [q["query"] for q in queries if not q["logged"]]
    topic_of = {q["query"]: q["topic"] for q in queries}
    asked, texts = sampled(logged, behaviour)
    result = {
        "score": setup.monitor(asked, texts),
        "score_unseen": setup.monitor(*sampled(unseen, behaviour)),
        **quality_shares([topic_of[q] for q in asked], texts),
        "examples": texts[:: samples * 24][:5],
    }
    if like_levels:
        result["like_levels"] = {
            str(like): setup.monitor(*sampled(logged, text))
            for like, text in level_behaviours(setup.b_star, 5).items()
        }
    return result


def return_noise(history: list[dict]) -> float | None:
    """std of the successive differences of the mean return / sqrt 2 (trend-free noise)."""
    import numpy as np

    if len(history) < 3:
        return None
    returns = np.array([row["return"] for row in history])
    return float(np.std(np.diff(returns), ddof=1) / np.sqrt(2))


def run_seed(cfg: BenchConfig, seed: int, work: Path, arms: tuple[str, ...]) -> dict[str, Any]:
    import mlflow

    from components.common.io import read_jsonl
    from components.common.params import ModelParams
    from components.rlhb import arms as rl_arms
    from components.rlhb import data_step
    from components.rlhb.params import RlhbDataParams, RlhbParams, ScorerParams

    seed_dir = work / f"seed{seed}"
    data_step.run(RlhbDataParams(seed=seed, logs=cfg.logs), "tiny", seed_dir / "data", seed_dir)
    params = RlhbParams(
        seed=seed,
        sft_steps=cfg.sft_steps,
        iterations=cfg.iterations,
        scorer=ScorerParams(warmup_steps=cfg.discriminator_warmup),
    )
    queries = read_jsonl(seed_dir / "data/eval_queries.jsonl")
    result: dict[str, Any] = {"seed": seed, "arms": {}, "histories": {}}
    with mlflow.start_run(run_name=f"rlhb-benchmark-seed{seed}"):
        setup = rl_arms.prepare(params, "tiny", ModelParams(), seed_dir / "data", seed_dir)
        result["d_warmup_accuracy"] = setup.metrics["d_warmup.accuracy"]
        for arm in arms:
            if arm == "sft":
                model, history, conditioned = setup.sft_model, [], True
            elif arm in ("rho_0.5", "rollouts_1"):
                model, history = rl_arms.rlhb_arm(setup, arm, arm_params(params, arm))
                conditioned = True
            else:
                model, history, conditioned = rl_arms.train_arm(setup, arm)
            levels = arm in ("sft", "rlhb")
            result["arms"][arm] = evaluate(setup, model, conditioned, queries, levels)
            result["histories"][arm] = history[HISTORY_EVERY - 1 :: HISTORY_EVERY]
            result["arms"][arm]["return_noise"] = return_noise(history)
    return result


def preregistration() -> dict[str, Any]:
    low, high = world_bounds()
    return {
        "written": "before any benchmark run; committed with the code",
        "design_history": (
            "While building the product: a byte-level BPE generator garbled words, so the tiny "
            "profile's generator reads a word-level vocabulary (the spec's); a discriminator at "
            "lr 1e-3 stayed at chance for 1,000 steps, at 3e-3 it reached 0.70 held-out accuracy "
            "after 1,500 (a logistic regression on the simulator's own quality features x "
            "behaviour levels reaches 0.68, the task's ceiling). One pilot (seed 7, 150 RL "
            "iterations, the RLHB arm only) checked that the loop runs; its numbers are in "
            "pilot_seen below. No world setting was tuned: the spec's simulator is used."
        ),
        "pilot_seen": (
            "seed 7, 20k logs: D's held-out accuracy after warm-up 0.708. On the never-logged "
            "template's 30 queries (then the only evaluation), SFT under b* scored -0.116 and "
            "RLHB after 150 iterations -0.100 (true score). The training monitor (b*-conditioned "
            "rollouts on logged queries) was 0.03 at iteration 1 and 0.12 at 150. Seeing that "
            "the held-out template mostly measures whether a phrasing never seen carries over "
            "(which neither SFT nor RL on the logs trains), the primary evaluation became the "
            "service's logged queries with fresh samples (the spec's setting: a search service's "
            "queries recur); the never-logged template stays, reported apart"
        ),
        "order": (
            "1. phenomenon: SFT and D's warm-up alone on seeds 100-102, committed; "
            "2. compare: every arm on seeds 0-2 (new worlds); 3. report"
        ),
        "normalised_utility": (
            f"u = (s - s_min) / (s_max - s_min), s the mean true score of the answers, "
            f"s_min = {low:.4f} (every defect), s_max = {high:.4f} (none)"
        ),
        "phenomenon": (
            "(a) the logs carry the hidden utility: D's held-out accuracy after warm-up, real "
            "against behaviour-shuffled triplets, has a 95 % t interval over seeds above 0.5; "
            "(b) behaviour-conditioned SFT under b* leaves headroom: its u has an interval "
            "wholly below 0.9. Without (a) nothing can learn from behaviour; without (b) there "
            "is nothing to gain. The page says which holds"
        ),
        "claims": {
            "V1_over_sft": (
                "RLHB's u / SFT's u under b*, per seed: the t interval's lower bound >= 1.10 "
                "(the spec's +10 % relative)"
            ),
            "V1_vs_rlhf": (
                "RLHB matches or beats pairwise RLHF from the same logs: the paired interval of "
                "u(RLHB) - u(RLHF) has its lower bound above -0.05 (non-inferiority margin)"
            ),
            "V1_vs_rlhbc": "u(RLHB) - u(RLHBC): paired interval and verdict, as above",
            "V2_control": (
                "the Spearman correlation between the conditioned like level (1..5; dislikes "
                "6 - level) and RLHB's realised true score: mean over seeds >= 0.8"
            ),
            "V3_collapse": (
                "with rho = 0.5, D's mean output on generations over the last 20 iterations is "
                ">= 0.95 in every seed (D collapses, the reward saturates); with rho = 0.1 and "
                "rho = 0 it is not"
            ),
            "V3_no_bootstrap": (
                "the issue's claim: without bootstrapping D over-fits and training collapses: "
                "D's held-out accuracy at the end >= 0.9, or u(no_bootstrap) - u(RLHB) "
                "interval wholly below 0; shown with the curves"
            ),
            "V3_rollouts": (
                "the mean return's iteration-to-iteration noise (the std of its successive "
                "differences / sqrt 2, every iteration kept) is higher with n = 1 than with "
                "n = 4 in every seed (16 prompts per iteration in both, the spec's)"
            ),
            "ablation_no_conditioning": (
                "u(RLHB) - u(no_conditioning): paired interval and verdict"
            ),
        },
        "seeds": {"phenomenon": list(PHENOMENON_SEEDS), "compare": list(COMPARE_SEEDS)},
        "statistics": (
            "mean +- sample std (ddof 1) over seeds; t interval of per-seed values or paired "
            "differences (experiments.stats)"
        ),
        "config": asdict(BenchConfig()),
        "eval": (
            f"120 logged queries x {EVAL_SAMPLES} sampled answers under b*, temperature 1 "
            "(primary); the 30 never-logged template queries the same way (secondary)"
        ),
    }


def write_report() -> None:
    from experiments.rlhb.report import write_report as write

    write(RESULTS)


def main(argv: list[str] | None = None) -> int:
    return stage_cli(
        argv,
        "experiments.rlhb.benchmark",
        (WORK, RESULTS),
        preregistration,
        BenchConfig(),
        run_seed,
        ARMS,
        write_report,
        phenomenon_arms=PHENOMENON_ARMS,
    )


if __name__ == "__main__":
    raise SystemExit(main())
