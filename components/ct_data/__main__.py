"""Write and check the synthetic multi-site CT benchmark, or check the user's MSD task folders."""

from pathlib import Path

from components.common.cli import step_main, step_parser
from components.ct_data.params import CtDataStep
from components.ct_data.step import run


def main(argv: list[str] | None = None) -> int:
    parser = step_parser("components.ct_data", __doc__)
    parser.add_argument("--out", type=Path, default=Path("data/ct"))
    parser.add_argument("--reports", type=Path, default=Path("reports/seg/data"))
    args = parser.parse_args(argv)
    return step_main(
        "ct_data", args, CtDataStep, lambda p: run(p.ct_data, p.profile, args.out, args.reports)
    )


if __name__ == "__main__":
    raise SystemExit(main())
