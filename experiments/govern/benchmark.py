"""GOVERN on the synthetic teachers (spec §tiny validation (a)), in the order experiments/lanes.py
fixes:

    python -m experiments.govern.benchmark prereg      # preregistration.json (commit it first)
    python -m experiments.govern.benchmark phenomenon  # mean-KD and the oracle alone, seeds 100-102
    python -m experiments.govern.benchmark compare     # every student, seeds 0 1 2
    python -m experiments.govern.benchmark report      # docs/results/govern.md

Each seed is a new world per regime (world seed = training seed): `heavy` (the spec's H),
`regional` (ours: each teacher wrong on its own region of inputs) and `gaussian` (the control G),
at the spec's sizes. Students are the product's (components.govern.student) on the same initial
weights; `oracle` is the same student regressed on f* itself (the ceiling no teacher set reaches).
AUC on the test split; the mean-of-teachers ensemble is scored on the same samples."""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from experiments.lanes import COMPARE_SEEDS, PHENOMENON_SEEDS, stage_cli

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "docs/results/govern"
WORK = REPO / ".cache/govern_benchmark"
REGIMES = ("heavy", "regional", "gaussian")
LABEL_FREE = ("govern", "govern_nearest", "mean", "median", "best_single", "confidence", "aekd")
ARMS = ("oracle", *LABEL_FREE, "labels", "supervised_govern", "supervised_mean_kd")
PHENOMENON_ARMS = ("oracle", "mean")


@dataclass(frozen=True)
class BenchConfig:
    """The spec's sizes (50k unlabeled, 2k labeled, 10k test, MLP 32-64-1, 10 epochs)."""

    sizes: dict[str, int] = field(
        default_factory=lambda: {"unlabeled": 50_000, "labeled": 2000, "dev": 2000, "test": 10_000}
    )
    epochs: int = 10
    supervised_epochs: int = 10


def run_regime(cfg: BenchConfig, seed: int, regime: str, arms: tuple[str, ...]) -> dict[str, Any]:
    import numpy as np
    import torch

    from components.govern import student as st
    from components.govern import world
    from components.govern.distill_step import best_teacher
    from components.govern.evaluate_step import majority_membership, scores
    from components.govern.params import GovernDataParams, GovernParams

    data = GovernDataParams(seed=seed, regime=regime, sizes=cfg.sizes)
    splits = world.make_world(data)
    unlabeled, labeled, test = splits["unlabeled"], splits["labeled"], splits["test"]
    params = GovernParams(seed=seed, epochs=cfg.epochs, supervised_epochs=cfg.supervised_epochs)
    best = best_teacher(splits, needed=True)
    torch.manual_seed(seed)
    initial = st.build_student(data.dim, params.hidden)
    students: dict[str, torch.nn.Module] = {}

    def train(name: str, rule: str, teachers, split, rule_params=params) -> None:
        model = copy.deepcopy(initial)
        batch = st.as_batch(split.features, teachers, split.labels)
        st.fit(model, batch, st.label_free_loss(rule, rule_params, best), params, cfg.epochs, seed)
        students[name] = model

    for arm in arms:
        if arm == "oracle":
            train(arm, "mean", unlabeled.truth[:, None], unlabeled)
        elif arm == "govern_nearest":
            nearest = params.model_copy(update={"target_mode": "nearest_majority"})
            train(arm, "govern", unlabeled.teachers, unlabeled, nearest)
        elif arm == "labels":
            train(arm, "labels", labeled.teachers, labeled)
        elif arm in LABEL_FREE:
            train(arm, arm, unlabeled.teachers, unlabeled)
    for arm in arms:
        if arm.startswith("supervised_"):
            model = copy.deepcopy(students["govern"])
            batch = st.as_batch(labeled.features, labeled.teachers, labeled.labels)
            rule = arm.removeprefix("supervised_")
            loss_of = st.supervised_stage_loss(params, rule)
            st.fit(model, batch, loss_of, params, cfg.supervised_epochs, seed)
            students[arm] = model
    logits = {name: st.predict(model, test.features) for name, model in students.items()}
    result: dict[str, Any] = {
        "students": {name: scores(value, test.labels) for name, value in logits.items()},
        "ensemble_mean": scores(test.teachers.mean(axis=1), test.labels),
        "ensemble_median": scores(np.median(test.teachers, axis=1), test.labels),
        "teachers": [scores(test.teachers[:, k], test.labels) for k in range(data.teachers)],
        "best_teacher": best,
    }
    if "govern" in logits:
        member = majority_membership(test, logits["govern"], params.eps)
        wrong = np.abs(test.teachers - test.truth[:, None]) > 1.0
        result["majority_share"] = member.mean(axis=0).tolist()
        result["outvoted_when_wrong"] = [
            float((~member[wrong[:, k], k]).mean()) if wrong[:, k].any() else None
            for k in range(data.teachers)
        ]
    return result


def run_seed(cfg: BenchConfig, seed: int, work: Path, arms: tuple[str, ...]) -> dict[str, Any]:
    return {
        "seed": seed,
        "regimes": {regime: run_regime(cfg, seed, regime, arms) for regime in REGIMES},
    }


def preregistration() -> dict[str, Any]:
    return {
        "written": "before any benchmark run; committed with the code",
        "design_history": (
            "While building the product, one demo-size run (4,000 unlabeled samples, seed 0) was "
            "seen in each of two regimes. In the spec's H, where each (teacher, sample) error is "
            "drawn independently, every distilled student (mean 0.837 AUC, GOVERN 0.838) beat "
            "the mean-of-teachers ensemble (0.808): a regressing student averages independent "
            "noise out over samples, so H may not contain the phenomenon at all. That is why the "
            "`regional` regime was added (each teacher wrong on its own half-space of inputs, "
            "with the spec's magnitudes and 20 % share), where seed 0 at demo size gave mean-KD "
            "0.827 and GOVERN 0.833 (and a 2-epoch smoke test of this script, 2,000 samples: "
            "0.721 and 0.728). No size, share or magnitude was tuned; the spec's are used."
        ),
        "order": (
            "1. phenomenon: oracle and mean-KD students alone on seeds 100-102, committed; "
            "2. compare: every student on seeds 0-2 (new worlds); 3. report"
        ),
        "phenomenon": (
            "per regime, the teachers' errors hurt the mean-KD student: the 95 % paired t "
            "interval over the 3 seeds of (oracle AUC - mean-KD AUC) lies wholly above 0. A "
            "regime without it cannot test claims 1-3, and the page says so"
        ),
        "claims": {
            "1_beats_mean": (
                "in each regime with the phenomenon, GOVERN - mean-KD test AUC: the paired "
                "interval lies above 0 and the mean difference is >= 0.01 (the spec's 1 point)"
            ),
            "2_retention": (
                "GOVERN's AUC / the mean-of-teachers ensemble's AUC: the interval's lower bound "
                ">= 0.99 (the spec; the paper reports 99.5 %)"
            ),
            "3_vs_strongest": (
                "GOVERN - the strongest label-free baseline (median, best single, confidence-"
                "weighted, AE-KD: the highest mean AUC): paired interval reported, with its verdict"
            ),
            "4_control": (
                "in the gaussian regime, GOVERN and mean-KD are equivalent: TOST within "
                "+-0.005 AUC (the spec's half point)"
            ),
            "5_supervised": (
                "from the same GOVERN student, the supervised GOVERN stage - BCE + mean-KD: the "
                "paired interval of test AUC lies above 0, in each regime"
            ),
        },
        "not_tested_here": (
            "the inference cost ratio (the synthetic teachers are formulas): the real-teacher "
            "world measures it"
        ),
        "seeds": {"phenomenon": list(PHENOMENON_SEEDS), "compare": list(COMPARE_SEEDS)},
        "statistics": (
            "mean +- sample std (ddof 1) over seeds; paired t interval of per-seed differences "
            "(experiments.stats); TOST at alpha 0.05"
        ),
        "config": asdict(BenchConfig()),
    }


def write_report() -> None:
    from experiments.govern.report import write_report as write

    write(RESULTS)


def main(argv: list[str] | None = None) -> int:
    return stage_cli(
        argv,
        "experiments.govern.benchmark",
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
