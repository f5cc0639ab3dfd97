"""dvc.yaml's code dependencies are exactly what each stage imports (tests/dvc_deps.py): a change
to a module re-runs the stages that run it, and no other."""

import yaml

from tests.dvc_deps import ROOT, closure, code_deps_by_stage, covering_deps, entry_modules

CODE_ROOTS = ("components", "pipelines", "experiments")


def test_every_stage_depends_on_exactly_the_code_it_imports():
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    expected = code_deps_by_stage()
    wrong = {}
    for name, stage in stages.items():
        declared = sorted(d for d in stage["deps"] if d.split("/")[0] in CODE_ROOTS)
        if declared != expected[name]:
            wrong[name] = {"declared": declared, "imports": expected[name]}
    assert not wrong, f"update dvc.yaml (python -m tests.dvc_deps prints the lists): {wrong}"


def test_no_stage_depends_on_the_studies_or_the_pipelines():
    """Except the check stage, which validates the whole params.yaml (pipelines.params)."""
    for stage, deps in code_deps_by_stage().items():
        layers = ("experiments",) if stage == "check" else ("experiments", "pipelines")
        assert not [d for d in deps if d.startswith(layers)], stage


def test_the_check_stage_runs_pipelines_check_without_the_steps():
    deps = code_deps_by_stage()["check"]
    assert {"pipelines/check.py", "pipelines/params.py"} <= set(deps)
    assert not [d for d in deps if d.endswith(("step.py", "__main__.py"))]


def test_a_multi_stage_room_is_entered_through_the_stage_module_only():
    entries = entry_modules("python -m components.grm_scorer policy --data data/reasoning")
    assert entries == ["components.grm_scorer.__main__", "components.grm_scorer.policy_step"]
    files = {str(p.relative_to(ROOT)) for p in closure(entries)}
    assert "components/grm_scorer/scorer_step.py" not in files


def test_covering_deps_lists_a_folder_only_when_all_of_it_is_imported(tmp_path):
    whole = {ROOT / "components/common/io.py", ROOT / "components/__init__.py"}
    assert "components" not in covering_deps(whole)
    assert covering_deps(whole) == ["components/__init__.py", "components/common/io.py"]
