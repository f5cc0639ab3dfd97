"""Diagnose what SFT failed to learn: detect unlearned records (MCQ + best-of-N) and attribute
each to a cause."""

from typing import Any

from components.common.cli import path_arguments, step_main, step_parser
from components.ilp_diagnosis.params import IlpStep


def main(argv: list[str] | None = None) -> int:
    parser = step_parser("components.ilp_diagnosis", __doc__, IlpStep)
    path_arguments(
        parser,
        "inputs",
        data=("data/prepared", "data_prep's output: the training records to diagnose"),
        base=("models/base", "pretrain's output: the base model"),
        sft=("models/sft", "finetune's output: the fine-tuned model"),
        dynamics=("reports/finetune/dynamics.csv", "finetune's per-record loss trajectories"),
    )
    path_arguments(
        parser,
        "outputs",
        reports=("reports/ilp", "diagnosis.jsonl (one row per record), summary.json and the plots"),
    )
    args = parser.parse_args(argv)
    return step_main(
        "ilp_diagnosis",
        args,
        IlpStep,
        lambda p: run(
            p.ilp_diagnosis, p.profile, args.data, args.base, args.sft, args.dynamics, args.reports
        ),
    )


def run(*args: Any) -> dict[str, float]:
    """`components.ilp_diagnosis.step.run`, imported only once params are valid: `--help` and a
    params error load none of the step's libraries (torch, transformers, MLflow)."""
    from components.ilp_diagnosis import step

    return step.run(*args)


if __name__ == "__main__":
    raise SystemExit(main())
