"""The code each DVC stage really runs: the project modules its `python -m` entry point imports,
followed transitively (imports inside functions included, parent packages' __init__ too).

`python -m tests.dvc_deps` prints, per stage, the `deps` entries that cover exactly those files
(`--write` puts them into dvc.yaml, keeping the data deps); tests/unit/test_dvc_deps.py checks
dvc.yaml against them, so a change re-runs only the stages that import what changed. A room with
several stages (components.common.cli.stage_main) is entered through its `__main__` and the one
`<stage>_step` module that the stage runs."""

from __future__ import annotations

import ast
import re
import shlex
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
PROJECT_PACKAGES = ("components", "pipelines", "experiments")


def module_file(module: str) -> Path | None:
    base = ROOT.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imported_modules(path: Path, module: str) -> set[str]:
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                source = f"{base}.{node.module}" if node.module else base
            else:
                source = node.module or ""
            found.add(source)
            found.update(f"{source}.{alias.name}" for alias in node.names)
    return {name for name in found if name.split(".")[0] in PROJECT_PACKAGES}


def closure(entry_modules: list[str]) -> set[Path]:
    """Files of every project module reachable from `entry_modules`, with their packages."""
    files: set[Path] = set()
    todo = list(entry_modules)
    seen: set[str] = set()
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        path = module_file(module)
        if path is None:
            continue  # a name imported from a module, not a module itself
        files.add(path)
        parts = module.split(".")
        todo.extend(".".join(parts[:i]) for i in range(1, len(parts)))
        todo.extend(_imported_modules(path, module))
    return files


def entry_modules(cmd: str) -> list[str]:
    words = shlex.split(cmd)
    module = words[words.index("-m") + 1]
    entries = [f"{module}.__main__" if module_file(f"{module}.__main__") else module]
    rest = words[words.index("-m") + 2 :]
    if rest and not rest[0].startswith("-") and module_file(f"{module}.{rest[0]}_step"):
        entries.append(f"{module}.{rest[0]}_step")
    return entries


def covering_deps(files: set[Path]) -> list[str]:
    """The fewest paths that cover `files` and nothing else: whole folders where they can."""
    deps: list[str] = []
    folders = sorted({f.parent for f in files}, key=lambda p: len(p.parts))
    covered: set[Path] = set()
    for folder in folders:
        if any(folder.is_relative_to(done) for done in covered):
            continue
        python_files = set(folder.rglob("*.py"))
        if python_files <= files:
            covered.add(folder)
            deps.append(str(folder.relative_to(ROOT)))
    for path in sorted(files):
        if not any(path.is_relative_to(folder) for folder in covered):
            deps.append(str(path.relative_to(ROOT)))
    return sorted(deps)


def code_deps_by_stage(dvc_yaml: Path = ROOT / "dvc.yaml") -> dict[str, list[str]]:
    stages = yaml.safe_load(dvc_yaml.read_text(encoding="utf-8"))["stages"]
    return {
        name: covering_deps(closure(entry_modules(stage["cmd"]))) for name, stage in stages.items()
    }


def write_code_deps(dvc_yaml: Path = ROOT / "dvc.yaml") -> None:
    """Replace each stage's code deps in dvc.yaml with the computed ones (comments stay)."""
    text = dvc_yaml.read_text(encoding="utf-8")
    for stage, code in code_deps_by_stage(dvc_yaml).items():
        block = re.compile(rf"(\n  {stage}:\n(?:    .*\n|\n)*?    deps:\n)((?:      - .*\n)+)")
        match = block.search(text)
        kept = [
            line
            for line in match.group(2).splitlines()
            if line.removeprefix("      - ").split("/")[0] not in PROJECT_PACKAGES
        ]
        entries = "".join(f"      - {dep}\n" for dep in code) + "".join(f"{k}\n" for k in kept)
        text = text[: match.start(2)] + entries + text[match.end(2) :]
    dvc_yaml.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    if sys.argv[1:] == ["--write"]:
        write_code_deps()
    for stage, deps in code_deps_by_stage().items():
        print(f"{stage}:")
        for dep in deps:
            print(f"  - {dep}")
