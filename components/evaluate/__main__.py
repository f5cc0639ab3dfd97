from pathlib import Path

from components.common.cli import step_main, step_parser
from components.evaluate.step import run


def main(argv: list[str] | None = None) -> int:
    parser = step_parser("evaluate")
    parser.add_argument("--data", type=Path, default=Path("data/prepared"))
    parser.add_argument("--model", type=Path, default=Path("models/sft"))
    parser.add_argument("--reports", type=Path, default=Path("reports/evaluate"))
    args = parser.parse_args(argv)
    return step_main(
        "evaluate", args, lambda p: run(p.evaluate, p.profile, args.data, args.model, args.reports)
    )


if __name__ == "__main__":
    raise SystemExit(main())
