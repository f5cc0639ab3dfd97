"""`make repro`'s two lanes (pipelines/repro.py): they cover every stage of dvc.yaml after `check`
and share none, and two `dvc repro` processes run side by side by DVC itself leave a complete,
clean dvc.lock."""

import subprocess
from pathlib import Path

import networkx as nx
import pytest
import yaml
from dvc.repo import Repo

from pipelines.repro import FIRST, LANES, lane_command, run_lanes
from tests.conftest import REPO_ROOT, venv_env

pytestmark = pytest.mark.integration


def stage_graph(root: Path) -> nx.DiGraph:
    """dvc.yaml's stages by name, an edge from each stage to the stages that read its outputs."""
    with Repo(str(root)) as repo:
        graph = repo.index.graph
        return nx.DiGraph((upstream.name, downstream.name) for downstream, upstream in graph.edges)


def lane_stages(graph: nx.DiGraph, first_stages: tuple[str, ...]) -> set[str]:
    return set(first_stages).union(*(nx.descendants(graph, stage) for stage in first_stages))


def test_the_lanes_cover_every_stage_after_check_and_share_none():
    graph = stage_graph(REPO_ROOT)
    lanes = {name: lane_stages(graph, stages) for name, stages in LANES.items()}
    assert set().union(*lanes.values()) == set(graph) - {FIRST}
    assert sum(map(len, lanes.values())) == len(graph) - 1, lanes
    for name, stages in lanes.items():
        upstream = set().union(*(nx.ancestors(graph, stage) for stage in stages)) - {FIRST}
        assert upstream <= stages, f"lane {name} depends on {upstream - stages}"


def toy_repo(root: Path) -> None:
    """Two independent chains of two stages, each stage a second long."""
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    subprocess.run(["dvc", "init", "-q"], cwd=root, check=True, env=venv_env())
    stages = {}
    for lane in ("a", "b"):
        stages[f"{lane}1"] = {
            "cmd": f"sleep 1 && echo {lane} > {lane}1.txt",
            "outs": [f"{lane}1.txt"],
        }
        stages[f"{lane}2"] = {
            "cmd": f"sleep 1 && cat {lane}1.txt > {lane}2.txt",
            "deps": [f"{lane}1.txt"],
            "outs": [f"{lane}2.txt"],
        }
    (root / "dvc.yaml").write_text(yaml.safe_dump({"stages": stages}))


def test_two_lanes_side_by_side_leave_a_complete_clean_dvc_lock(tmp_path, monkeypatch):
    toy_repo(tmp_path)
    monkeypatch.chdir(tmp_path)
    codes = run_lanes(
        {"a": lane_command(["a1"], force=False), "b": lane_command(["b1"], force=False)},
        env=venv_env(),
    )
    assert codes == {"a": 0, "b": 0}
    lock = yaml.safe_load((tmp_path / "dvc.lock").read_text())
    assert set(lock["stages"]) == {"a1", "a2", "b1", "b2"}
    status = subprocess.run(
        ["dvc", "status", "--json"], cwd=tmp_path, env=venv_env(), capture_output=True, text=True
    )
    assert status.returncode == 0 and status.stdout.strip() == "{}", status.stdout
