"""Build the SFT data: the synthetic LLM world (or the user's JSONL files), validated with Great
Expectations, plus the tiny profile's tokenizer."""

from pathlib import Path

from components.common.cli import step_main, step_parser
from components.data_prep.params import DataPrepStep
from components.data_prep.step import run


def main(argv: list[str] | None = None) -> int:
    parser = step_parser("components.data_prep", __doc__)
    parser.add_argument("--out", type=Path, default=Path("data/prepared"))
    parser.add_argument("--reports", type=Path, default=Path("reports/data_prep"))
    args = parser.parse_args(argv)
    return step_main(
        "data_prep",
        args,
        DataPrepStep,
        lambda p: run(p.data_prep, p.profile, args.out, args.reports),
    )


if __name__ == "__main__":
    raise SystemExit(main())
