"""The order every benchmark lane follows, and its resumable runner:

    python -m experiments.<method>.<lane> prereg      # preregistration.json (commit it first)
    python -m experiments.<method>.<lane> phenomenon  # the baseline alone (seeds 100-102)
    python -m experiments.<method>.<lane> compare     # every arm, seeds 0 1 2 (new worlds)
    python -m experiments.<method>.<lane> report      # the results page

`compare` refuses to run before the phenomenon's results exist, and both before the
preregistration: the benchmark is shown to contain the phenomenon, with the baseline alone,
before any method result is seen. Each seed's results are written to their own JSON as soon as
they exist, so a stopped stage resumes."""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from components.common.io import read_json, write_json

PHENOMENON_SEEDS = (100, 101, 102)
COMPARE_SEEDS = (0, 1, 2)


def run_stage(
    cfg: Any,
    seeds: tuple[int, ...],
    arms: tuple[str, ...],
    work: Path,
    run: Callable[[Any, int, Path, tuple[str, ...]], dict[str, Any]],
) -> list[dict[str, Any]]:
    """Each seed's results, `run(cfg, seed, work, arms)` for a seed without its JSON under
    `work`/results yet."""
    results = []
    for seed in seeds:
        path = work / "results" / f"{'-'.join(arms)}_seed{seed}.json"
        if not path.is_file():
            write_json(path, run(cfg, seed, work, arms))
        results.append(read_json(path))
    return results


def stage_cli(
    argv: list[str] | None,
    module: str,
    defaults: tuple[Path, Path],
    preregistration: Callable[[], dict[str, Any]],
    cfg: Any,
    run: Callable[[Any, int, Path, tuple[str, ...]], dict[str, Any]],
    arms: tuple[str, ...],
    report: Callable[[], None],
    phenomenon_arms: tuple[str, ...] = ("sft",),
    phenomenon_seeds: tuple[int, ...] = PHENOMENON_SEEDS,
) -> int:
    """`defaults`: (work, out); `phenomenon_arms`: the baseline arms the phenomenon stage runs,
    on `phenomenon_seeds` (the comparison's own seeds when its baseline models are reused)."""
    parser = argparse.ArgumentParser(prog=f"python -m {module}")
    parser.add_argument("stage", choices=["prereg", "phenomenon", "compare", "report"])
    parser.add_argument("--seeds", type=int, nargs="+")
    parser.add_argument("--work", type=Path, default=defaults[0])
    parser.add_argument("--out", type=Path, default=defaults[1])
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    out, work = args.out.resolve(), args.work.resolve()
    if args.stage == "prereg":
        write_json(out / "preregistration.json", preregistration())
        return 0
    if args.stage == "report":
        report()
        return 0
    if not (out / "preregistration.json").is_file():
        raise SystemExit("no preregistration.json: run `prereg` and commit it first")
    if args.stage == "compare" and not (out / "phenomenon.json").is_file():
        raise SystemExit("no phenomenon.json: run `phenomenon` and commit it first")
    work.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{work / 'mlflow.db'}")
    os.chdir(work)  # Trainer scratch folders land here
    if args.stage == "phenomenon":
        seeds, stage_arms = tuple(args.seeds or phenomenon_seeds), phenomenon_arms
    else:
        seeds, stage_arms = tuple(args.seeds or COMPARE_SEEDS), arms
    results = run_stage(cfg, seeds, stage_arms, work, run)
    write_json(out / f"{args.stage}.json", {"config": asdict(cfg), "seeds": results})
    return 0
