"""Train the tiny base LM on the world corpus (tiny profile), or materialise the pretrained base
(smollm2, hf)."""

from typing import Any

from components.common.cli import path_arguments, step_main, step_parser
from components.pretrain.params import PretrainStep


def main(argv: list[str] | None = None) -> int:
    parser = step_parser("components.pretrain", __doc__, PretrainStep)
    path_arguments(
        parser, "inputs", data=("data/prepared", "data_prep's output: the corpus and the tokenizer")
    )
    path_arguments(
        parser,
        "outputs",
        out=("models/base", "the base model and its tokenizer (save_pretrained)"),
        reports=(
            "reports/pretrain",
            "the loss curve (loss.csv, loss.png); base.json (source, size) for smollm2/hf",
        ),
    )
    args = parser.parse_args(argv)
    return step_main(
        "pretrain",
        args,
        PretrainStep,
        lambda p: run(p.pretrain, p.model, p.profile, args.data, args.out, args.reports),
    )


def run(*args: Any) -> dict[str, float]:
    """`components.pretrain.step.run`, imported only once params are valid: `--help` and a params
    error load none of the step's libraries (torch, transformers, MLflow)."""
    from components.pretrain import step

    return step.run(*args)


if __name__ == "__main__":
    raise SystemExit(main())
