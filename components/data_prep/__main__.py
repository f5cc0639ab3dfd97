"""Build the SFT data: the synthetic LLM world (or the user's JSONL files), validated with Great
Expectations, plus the tiny profile's tokenizer."""

from typing import Any

from components.common.cli import path_arguments, step_main, step_parser
from components.data_prep.params import DataPrepStep


def main(argv: list[str] | None = None) -> int:
    parser = step_parser("components.data_prep", __doc__, DataPrepStep)
    path_arguments(
        parser,
        "outputs",
        out=(
            "data/prepared",
            "train/eval JSONL, the pretraining corpus and the tiny profile's tokenizer",
        ),
        reports=("reports/data_prep", "the Great Expectations result of every split"),
    )
    args = parser.parse_args(argv)
    return step_main(
        "data_prep",
        args,
        DataPrepStep,
        lambda p: run(p.data_prep, p.profile, args.out, args.reports),
    )


def run(*args: Any) -> dict[str, float]:
    """`components.data_prep.step.run`, imported only once params are valid: `--help` and a params
    error load none of the step's libraries (GX, MLflow, tokenizers)."""
    from components.data_prep import step

    return step.run(*args)


if __name__ == "__main__":
    raise SystemExit(main())
