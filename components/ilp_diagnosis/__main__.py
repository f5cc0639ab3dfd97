"""Diagnose what SFT failed to learn: detect unlearned records (MCQ + best-of-N) and attribute
each to a cause."""

from pathlib import Path

from components.common.cli import step_main, step_parser
from components.ilp_diagnosis.params import IlpStep
from components.ilp_diagnosis.step import run


def main(argv: list[str] | None = None) -> int:
    parser = step_parser("components.ilp_diagnosis", __doc__)
    parser.add_argument("--data", type=Path, default=Path("data/prepared"))
    parser.add_argument("--base", type=Path, default=Path("models/base"))
    parser.add_argument("--sft", type=Path, default=Path("models/sft"))
    parser.add_argument("--dynamics", type=Path, default=Path("reports/finetune/dynamics.csv"))
    parser.add_argument("--reports", type=Path, default=Path("reports/ilp"))
    args = parser.parse_args(argv)
    return step_main(
        "ilp_diagnosis",
        args,
        IlpStep,
        lambda p: run(
            p.ilp_diagnosis, p.profile, args.data, args.base, args.sft, args.dynamics, args.reports
        ),
    )


if __name__ == "__main__":
    raise SystemExit(main())
