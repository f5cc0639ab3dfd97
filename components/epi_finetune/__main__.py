"""Supervised fine-tuning of the base model with Evolving Parameter Isolation or a baseline."""

from typing import Any

from components.common.cli import path_arguments, step_main, step_parser
from components.epi_finetune.params import FinetuneStep


def main(argv: list[str] | None = None) -> int:
    parser = step_parser("components.epi_finetune", __doc__, FinetuneStep)
    path_arguments(
        parser,
        "inputs",
        data=("data/prepared", "data_prep's output: train.jsonl, eval.jsonl"),
        base=("models/base", "pretrain's output: the base model to fine-tune"),
    )
    path_arguments(
        parser,
        "outputs",
        out=("models/sft", "the fine-tuned model and its tokenizer"),
        reports=(
            "reports/finetune",
            "loss, per-task accuracy, forgetting, mask drift and dynamics.csv",
        ),
    )
    args = parser.parse_args(argv)
    return step_main(
        "finetune",
        args,
        FinetuneStep,
        lambda p: run(p.finetune, p.profile, args.data, args.base, args.out, args.reports),
    )


def run(*args: Any) -> dict[str, float]:
    """`components.epi_finetune.step.run`, imported only once params are valid: `--help` and a
    params error load none of the step's libraries (torch, transformers, PEFT, MLflow)."""
    from components.epi_finetune import step

    return step.run(*args)


if __name__ == "__main__":
    raise SystemExit(main())
