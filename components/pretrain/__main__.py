"""Train the tiny base LM on the world corpus (tiny profile), or materialise the pretrained base
(smollm2, hf)."""

from pathlib import Path

from components.common.cli import step_main, step_parser
from components.pretrain.params import PretrainStep
from components.pretrain.step import run


def main(argv: list[str] | None = None) -> int:
    parser = step_parser("components.pretrain", __doc__)
    parser.add_argument("--data", type=Path, default=Path("data/prepared"))
    parser.add_argument("--out", type=Path, default=Path("models/base"))
    parser.add_argument("--reports", type=Path, default=Path("reports/pretrain"))
    args = parser.parse_args(argv)
    return step_main(
        "pretrain",
        args,
        PretrainStep,
        lambda p: run(p.pretrain, p.model, p.profile, args.data, args.out, args.reports),
    )


if __name__ == "__main__":
    raise SystemExit(main())
