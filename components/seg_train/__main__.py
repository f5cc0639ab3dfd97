from pathlib import Path

from components.common.cli import step_main, step_parser
from components.seg_train.step import run


def main(argv: list[str] | None = None) -> int:
    parser = step_parser("seg_train")
    parser.add_argument("--data", type=Path, default=Path("data/ct"))
    parser.add_argument("--out", type=Path, default=Path("models/seg"))
    parser.add_argument("--reports", type=Path, default=Path("reports/seg/train"))
    args = parser.parse_args(argv)
    return step_main(
        "seg_train", args, lambda p: run(p.seg_train, p.profile, args.data, args.out, args.reports)
    )


if __name__ == "__main__":
    raise SystemExit(main())
