"""ct_data: generate the synthetic multi-site CT benchmark (or take the user's MSD task folders),
check every volume, write `domains.json` (domain → task folder).

Output `out_dir`: one MSD task folder per synthetic site and domains.json, renamed into place at
once after every check passed. User folders are checked and referenced, not copied."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import mlflow
import numpy as np

from components.common.io import atomic_path, write_json
from components.common.params import Profile
from components.common.repro import seed_everything
from components.common.tracking import step_run
from components.ct_data.params import CtDataParams
from components.ct_data.synth import write_domain
from components.ct_data.volumes import check_domain

log = logging.getLogger(__name__)


def run(params: CtDataParams, profile: Profile, out_dir: Path, report_dir: Path) -> dict[str, Any]:
    seed_everything(params.seed, with_torch=False)  # NumPy and SciPy only
    with step_run("ct_data", profile, params), atomic_path(out_dir) as tmp:
        tmp.mkdir()
        if params.source == "synthetic":
            domains = {name: name for name in params.domains}
            for name in params.domains:
                write_domain(
                    tmp / name,
                    name,
                    params.cases_per_domain,
                    params.seed,
                    params.shape,
                    params.spacing,
                )
        else:
            domains = {
                name: str(Path(folder).resolve()) for name, folder in params.msd_domains.items()
            }
        # every volume is checked before anything is renamed into place
        summaries = {name: check_domain(tmp / folder) for name, folder in domains.items()}
        write_json(report_dir / "volumes.json", summaries)
        mlflow.log_artifact(str(report_dir / "volumes.json"), artifact_path="validation")
        write_json(tmp / "domains.json", domains)

        metrics: dict[str, Any] = {}
        for name, cases in summaries.items():
            metrics[f"cases.{name}"] = len(cases)
            metrics[f"lesion_voxels.{name}"] = float(np.mean([c["lesion_voxels"] for c in cases]))
            metrics[f"slices.{name}"] = float(np.mean([c["shape"][2] for c in cases]))
        mlflow.log_metrics(metrics)
        log.info("ct_data wrote %s: %s", out_dir, metrics)
        return metrics
