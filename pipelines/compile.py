"""Compile every pipeline to KFP IR YAML: `python -m pipelines.compile [--out build/pipelines]`."""

from __future__ import annotations

import argparse
from pathlib import Path

from kfp import compiler

from pipelines import full, llm, reward, segmentation
from pipelines.params import load_project_params

PIPELINES = {
    "llm": llm.build_pipeline,
    "reward": reward.build_pipeline,
    "segmentation": segmentation.build_pipeline,
    "full": full.build_pipeline,
}


def compile_all(params_path: Path, out_dir: Path, overrides: list[str] = ()) -> list[Path]:
    params = load_project_params(params_path, overrides)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, build in PIPELINES.items():
        target = out_dir / f"{name}.yaml"
        compiler.Compiler().compile(build(params), package_path=str(target))
        written.append(target)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipelines.compile")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--out", type=Path, default=Path("build/pipelines"))
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args(argv)
    for path in compile_all(args.params, args.out, args.overrides):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
