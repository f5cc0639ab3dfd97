"""grm_grpo: E-GRM stage 2, GRPO of the SFT policy with the scorer's pairwise reward (grpo.py).

    python -m components.grm_scorer grpo --data data/reasoning --policy models/grm_policy \
        --scorer models/grm_scorer --out models/grm_grpo

Prompts: the CoT records of the training questions (question + cot_suffix), cycled for
grpo.steps * grpo.prompts_per_step prompts. The output has grm_policy's layout (model and
tokenizer), so grm_evaluate and the registered E-GRM pyfunc read it unchanged. grpo.steps = 0 is
"no GRPO": the SFT policy is copied through, without loading torch, TRL or MLflow."""

from __future__ import annotations

import csv
import logging
import shutil
from pathlib import Path
from typing import Any

from components.common.cli import path_arguments, step_main, step_parser
from components.common.io import ProjectError, atomic_path, read_jsonl, write_json
from components.common.params import Profile
from components.grm_scorer import reasoning
from components.grm_scorer.params import GrmParams, GrmStep

log = logging.getLogger(__name__)

# TRL's log keys -> the step's curve names
CURVES = {"reward": "reward", "kl": "kl", "correct": "correct"}


def grpo_prompts(data_file: Path, count: int) -> list[dict[str, str]]:
    """`count` CoT prompts {prompt, question, gold} from the training file, cycled in order."""
    cot = []
    for line, record in enumerate(read_jsonl(data_file), start=1):
        meta = record.get("meta")
        if not isinstance(meta, dict) or not {"mode", "gold", "terms"} <= set(meta):
            raise ProjectError(
                "needs meta.mode, meta.gold and meta.terms", file=data_file, line=line, field="meta"
            )
        if meta["mode"] == "cot":
            question = reasoning.problem_of(record).question
            cot.append(
                {"prompt": record["prompt"], "question": question, "gold": str(meta["gold"])}
            )
    if not cot:
        raise ProjectError("no CoT record (meta.mode cot) to prompt GRPO with", file=data_file)
    return [cot[i % len(cot)] for i in range(count)]


def pass_through(policy_dir: Path, out_dir: Path, report_dir: Path) -> dict[str, float]:
    """The SFT policy copied unchanged, and where it came from in `report_dir`/source.json (no
    MLflow run: nothing is trained)."""
    if not (policy_dir / "config.json").is_file():
        raise ProjectError("not a model directory (no config.json)", file=policy_dir)
    with atomic_path(out_dir) as tmp:
        shutil.copytree(policy_dir, tmp)
    write_json(report_dir / "source.json", {"grpo.steps": 0, "copied_from": str(policy_dir)})
    log.info("grm_grpo: grpo.steps = 0, %s copied to %s", policy_dir, out_dir)
    return {"grpo.steps": 0.0}


def save_curves(history: list[dict[str, Any]], report_dir: Path) -> dict[str, float]:
    """curves.csv and reward / correct / kl PNGs from TRL's log history; first and last values."""
    import mlflow

    from components.common.plots import line_plot

    rows = [
        {"step": e["step"], **{name: e[key] for key, name in CURVES.items() if key in e}}
        for e in history
        if "reward" in e
    ]
    if not rows:
        return {}
    with atomic_path(report_dir / "curves.csv") as tmp, tmp.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    steps = [r["step"] for r in rows]
    for name in ("reward", "correct", "kl"):
        png = line_plot(
            {name: (steps, [r.get(name, float("nan")) for r in rows])},
            report_dir / f"{name}.png",
            title=f"grm_grpo {name}",
            xlabel="optimizer step",
            ylabel=name,
        )
        mlflow.log_artifact(str(png), artifact_path="plots")
    return {
        f"grpo.{name}.{at}": row.get(name, float("nan"))
        for name in CURVES.values()
        for at, row in (("first", rows[0]), ("last", rows[-1]))
    }


def run(
    params: GrmParams,
    profile: Profile,
    data_dir: Path,
    policy_dir: Path,
    scorer_dir: Path,
    out_dir: Path,
    report_dir: Path,
) -> dict[str, float]:
    grpo = params.grpo
    if grpo.steps == 0:
        return pass_through(policy_dir, out_dir, report_dir)

    import mlflow

    from components.common.repro import seed_everything
    from components.common.tracking import step_run
    from components.common.training import checkpoint_dir
    from components.grm_scorer import grpo as grpo_lib
    from components.grm_scorer.scorer import load_scorer

    seed_everything(params.seed)
    prompts = grpo_prompts(data_dir / "train.jsonl", grpo.steps * grpo.prompts_per_step)
    scorer = load_scorer(scorer_dir) if grpo.reward == "pairwise" else None
    with step_run("grm_grpo", profile, grpo):
        work = checkpoint_dir("grm_grpo", {"grpo": grpo.model_dump(), "seed": params.seed})
        model, tokenizer, history = grpo_lib.train(policy_dir, prompts, scorer, params, work)
        metrics = {"grpo.steps": float(grpo.steps), **save_curves(history, report_dir)}
        with atomic_path(out_dir) as tmp:
            model.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
        mlflow.log_metrics(metrics)
        log.info("grm_grpo wrote %s: %s", out_dir, metrics)
        return metrics


def main(argv: list[str] | None = None) -> int:
    parser = step_parser(
        "components.grm_scorer grpo",
        "E-GRM stage 2: GRPO of the SFT policy (TRL GRPOTrainer) with the scorer's pairwise "
        "reward or correctness only; grpo.steps = 0 passes the SFT policy through.",
        GrmStep,
    )
    path_arguments(
        parser,
        "inputs",
        data=("data/reasoning", "grm_data's output: the training questions"),
        policy=("models/grm_policy", "grm_policy's output: the SFT policy"),
        scorer=("models/grm_scorer", "grm_scorer's output: the pairwise reward's S_phi"),
    )
    path_arguments(
        parser,
        "outputs",
        out=("models/grm_grpo", "the policy after GRPO (grm_policy's layout)"),
        reports=("reports/grm/grpo", "curves.csv, reward.png, correct.png and kl.png"),
    )
    args = parser.parse_args(argv)
    return step_main(
        "grm_grpo",
        args,
        GrmStep,
        lambda p: run(
            p.grm, p.profile, args.data, args.policy, args.scorer, args.out, args.reports
        ),
    )
