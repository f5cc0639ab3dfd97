"""EPI under DDP: two CPU ranks (gloo) with different data end with the same masks and weights."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, run_torchrun

WORKER = Path(__file__).with_name("epi_ddp_worker.py")


@pytest.mark.integration
@pytest.mark.torchrun
def test_masks_and_weights_identical_on_every_rank(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    run = run_torchrun([str(WORKER), str(tmp_path)], REPO_ROOT, env)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    r0, r1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1))

    assert r0["losses"] != r1["losses"]  # the ranks really saw different data
    assert r0["refresh_steps"] == r1["refresh_steps"] == [2, 4, 6]
    assert r0["n_isolated"] == r1["n_isolated"] == round(0.05 * r0["n_eligible"])
    assert r0["all_mask_digests"] == r1["all_mask_digests"] == [r0["mask_digest"]] * 2
    assert r0["mask_digest"] == r1["mask_digest"]
    assert r0["ema_digest"] == r1["ema_digest"]
    assert r0["weights_digest"] == r1["weights_digest"]
    assert r0["jaccard_prev"] == r1["jaccard_prev"] and r0["jaccard_prev"][-1] < 1.0
    assert all(r0["protected"]) and all(r1["protected"])
