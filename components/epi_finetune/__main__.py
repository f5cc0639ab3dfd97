"""Supervised fine-tuning of the base model with Evolving Parameter Isolation or a baseline."""

from pathlib import Path

from components.common.cli import step_main, step_parser
from components.epi_finetune.params import FinetuneStep
from components.epi_finetune.step import run


def main(argv: list[str] | None = None) -> int:
    parser = step_parser("components.epi_finetune", __doc__)
    parser.add_argument("--data", type=Path, default=Path("data/prepared"))
    parser.add_argument("--base", type=Path, default=Path("models/base"))
    parser.add_argument("--out", type=Path, default=Path("models/sft"))
    parser.add_argument("--reports", type=Path, default=Path("reports/finetune"))
    args = parser.parse_args(argv)
    return step_main(
        "finetune",
        args,
        FinetuneStep,
        lambda p: run(p.finetune, p.profile, args.data, args.base, args.out, args.reports),
    )


if __name__ == "__main__":
    raise SystemExit(main())
