"""The SmolLM2 lane end to end at smoke size (2 steps, 1 seed, 6 countries, 3 methods): about
2-4 minutes on 2 CPU cores, too long for `make test`'s budget, so it runs only on request:

    EPI_SMOLLM2_SMOKE=1 .venv/bin/python -m pytest -q tests/integration/test_epi_smollm2_smoke.py
"""

import os

import pytest

from components.common.io import read_json
from experiments.epi import smollm2_lane

pytestmark = [
    pytest.mark.slow,
    pytest.mark.integration,
    pytest.mark.skipif(
        not os.environ.get("EPI_SMOLLM2_SMOKE"), reason="set EPI_SMOLLM2_SMOKE=1 (minutes)"
    ),
]


def test_smoke_lane_writes_every_stage(tmp_path, mlflow_uri):
    out, work = tmp_path / "results" / "epi_smollm2", tmp_path / "work"
    args = ["--smoke", "--out", str(out), "--work", str(work)]
    assert smollm2_lane.main(["all", *args]) == 0
    baseline = read_json(out / "baseline.json")
    assert [r["method"] for r in baseline["runs"]] == ["full"] and baseline["steps"] == 2
    compare = read_json(out / "compare.json")
    assert list(compare["results"]) == smollm2_lane.LANE_METHODS
    for runs in compare["results"].values():
        assert -1.0 <= runs[0]["forgetting"] <= 1.0 and runs[0]["seed"] == 0
    page = (tmp_path / "results" / "epi.md").read_text()
    assert "<!-- epi-smollm2:begin -->" in page and "| epi |" in page
    assert (tmp_path / "results" / "img" / "epi_smollm2_forgetting.png").is_file()
    # a second call resumes from the per-run JSONs (no training)
    assert smollm2_lane.main(["compare", *args]) == 0
