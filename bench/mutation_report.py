"""The mutation-testing report: mutmut's results (mutants/) as bench/results/mutation.md.

    make mutation                        # mutmut run (resumable), then this script
    python -m bench.mutation_report      # only the report, from the results mutmut left

Per module (the `only_mutate` files of pyproject's [tool.mutmut]): mutants, killed, survived, and
the rest (no test reaches the function, timeout, not yet checked); then every survivor with its
diff. The hand-written text of the page (accepted survivors and why) is kept: only the sections
between the `mutation-*` markers are rewritten."""

from __future__ import annotations

import argparse
import json
import os
import tomllib
from collections import Counter
from pathlib import Path

from experiments.report import replace_section, table

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "bench" / "results" / "mutation.md"
COLUMNS = ("killed", "survived", "no tests", "timeout", "not checked", "other")


def mutated_modules() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mutmut"]
    return list(config["only_mutate"])


def statuses(module: str) -> dict[str, str]:
    """mutant name -> mutmut's status word, from mutants/<module>.meta (empty before a run)."""
    from mutmut.stats import status_by_exit_code

    meta = ROOT / "mutants" / f"{module}.meta"
    if not meta.is_file():
        return {}
    codes = json.loads(meta.read_text())["exit_code_by_key"]
    return {name: status_by_exit_code[code] for name, code in codes.items()}


def column(status: str) -> str:
    return status if status in COLUMNS else "other"


def counts_table(by_module: dict[str, dict[str, str]]) -> str:
    rows, total = [], Counter()
    for module, found in by_module.items():
        counts = Counter(column(status) for status in found.values())
        total.update(counts)
        rows.append([f"`{module}`", len(found), *(counts[c] for c in COLUMNS)])
    rows.append(["**all**", sum(total.values()), *(total[c] for c in COLUMNS)])
    return table(["module", "mutants", *COLUMNS], rows)


def survivor_diffs(by_module: dict[str, dict[str, str]]) -> str:
    from mutmut.mutation.diff_apply import get_diff_for_mutant

    blocks = []
    for module, found in by_module.items():
        for name, status in found.items():
            if status == "survived":
                diff = get_diff_for_mutant(name, path=module).strip()
                blocks.append(f"`{name}`\n\n```diff\n{diff}\n```")
    return "\n\n".join(blocks) if blocks else "No survivor."


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--page", type=Path, default=PAGE)
    args = parser.parse_args(argv)
    os.chdir(ROOT)  # mutmut's reader resolves mutants/<module> against the working directory
    by_module = {module: statuses(module) for module in mutated_modules()}
    replace_section(args.page, "mutation-counts", counts_table(by_module))
    replace_section(args.page, "mutation-survivors", survivor_diffs(by_module))
    print(f"wrote {args.page}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
