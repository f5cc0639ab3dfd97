"""Per-task exact match of the fine-tuned model on the held-out split; registers the model and
moves the champion alias when it wins."""

from typing import Any

from components.common.cli import path_arguments, step_main, step_parser
from components.evaluate.params import EvaluateStep


def main(argv: list[str] | None = None) -> int:
    parser = step_parser("components.evaluate", __doc__, EvaluateStep)
    path_arguments(
        parser,
        "inputs",
        data=("data/prepared", "data_prep's output: eval.jsonl"),
        model=("models/sft", "finetune's output: the model to evaluate and register"),
    )
    path_arguments(
        parser, "outputs", reports=("reports/evaluate", "predictions.jsonl and accuracy.png")
    )
    args = parser.parse_args(argv)
    return step_main(
        "evaluate",
        args,
        EvaluateStep,
        lambda p: run(p.evaluate, p.profile, args.data, args.model, args.reports),
    )


def run(*args: Any) -> dict[str, float]:
    """`components.evaluate.step.run`, imported only once params are valid: `--help` and a params
    error load none of the step's libraries (torch, transformers, MLflow)."""
    from components.evaluate import step

    return step.run(*args)


if __name__ == "__main__":
    raise SystemExit(main())
