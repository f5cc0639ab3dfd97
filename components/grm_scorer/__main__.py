"""CLI for the E-GRM stages used by dvc.yaml:

    python -m components.grm_scorer data     --out data/reasoning --reports reports/grm/data
    python -m components.grm_scorer policy   --data data/reasoning --out models/grm_policy ...
    python -m components.grm_scorer scorer   --data ... --policy ... --out models/grm_scorer ...
    python -m components.grm_scorer evaluate --data ... --policy ... --scorer ... --reports ...

Each writes metrics/grm_<stage>.json (common.cli's contract: ProjectError -> one line, exit 2)."""

from __future__ import annotations

import sys
from pathlib import Path

from components.common.cli import step_main, step_parser

STAGES = ("data", "policy", "scorer", "evaluate")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in STAGES:
        print(f"usage: python -m components.grm_scorer {{{','.join(STAGES)}}} ...", file=sys.stderr)
        return 2
    stage, rest = argv[0], argv[1:]
    name = f"grm_{stage}"
    parser = step_parser(f"grm_scorer {stage}")
    parser.add_argument("--data", type=Path, default=Path("data/reasoning"))
    parser.add_argument("--policy", type=Path, default=Path("models/grm_policy"))
    parser.add_argument("--scorer", type=Path, default=Path("models/grm_scorer"))
    parser.add_argument("--out", type=Path, default=None, help="the stage's output directory")
    parser.add_argument("--reports", type=Path, default=Path(f"reports/grm/{stage}"))
    args = parser.parse_args(rest)
    args.metrics = args.metrics or f"metrics/{name}.json"

    def run(p):
        if stage == "data":
            from components.grm_scorer.data_step import run as data_run

            return data_run(p.reward_data, p.profile, args.out or args.data, args.reports)
        if stage == "policy":
            from components.grm_scorer.policy_step import run as policy_run

            return policy_run(
                p.grm, p.model, p.profile, args.data, args.out or args.policy, args.reports
            )
        if stage == "scorer":
            from components.grm_scorer.scorer_step import run as scorer_run

            return scorer_run(
                p.grm, p.profile, args.data, args.policy, args.out or args.scorer, args.reports
            )
        from components.grm_scorer.eval_step import run as eval_run

        return eval_run(p.grm, p.profile, args.data, args.policy, args.scorer, args.reports)

    return step_main(name, args, run)


if __name__ == "__main__":
    raise SystemExit(main())
