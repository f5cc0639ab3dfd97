"""Write and check the synthetic multi-site CT benchmark, or check the user's MSD task folders."""

from typing import Any

from components.common.cli import path_arguments, step_main, step_parser
from components.ct_data.params import CtDataStep


def main(argv: list[str] | None = None) -> int:
    parser = step_parser("components.ct_data", __doc__, CtDataStep)
    path_arguments(
        parser,
        "outputs",
        out=(
            "data/ct",
            "the CT volumes in the Medical Segmentation Decathlon layout, one folder per domain",
        ),
        reports=("reports/seg/data", "volumes.json: the checked properties of every volume"),
    )
    args = parser.parse_args(argv)
    return step_main(
        "ct_data", args, CtDataStep, lambda p: run(p.ct_data, p.profile, args.out, args.reports)
    )


def run(*args: Any) -> dict[str, float]:
    """`components.ct_data.step.run`, imported only once params are valid: `--help` and a params
    error load none of the step's libraries (SciPy, nibabel, MLflow)."""
    from components.ct_data import step

    return step.run(*args)


if __name__ == "__main__":
    raise SystemExit(main())
