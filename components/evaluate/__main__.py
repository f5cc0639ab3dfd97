"""Per-task exact match of the fine-tuned model on the held-out split; registers the model and
moves the champion alias when it wins."""

from pathlib import Path

from components.common.cli import step_main, step_parser
from components.evaluate.params import EvaluateStep
from components.evaluate.step import run


def main(argv: list[str] | None = None) -> int:
    parser = step_parser("components.evaluate", __doc__)
    parser.add_argument("--data", type=Path, default=Path("data/prepared"))
    parser.add_argument("--model", type=Path, default=Path("models/sft"))
    parser.add_argument("--reports", type=Path, default=Path("reports/evaluate"))
    args = parser.parse_args(argv)
    return step_main(
        "evaluate",
        args,
        EvaluateStep,
        lambda p: run(p.evaluate, p.profile, args.data, args.model, args.reports),
    )


if __name__ == "__main__":
    raise SystemExit(main())
