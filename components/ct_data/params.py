"""ct_data's section: the synthetic multi-site CT benchmark or the user's MSD task folders."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from components.common.params import StrictModel, step_schema

SyntheticSite = Literal["A", "B", "C"]


class CtDataParams(StrictModel):
    """ct_data: the synthetic multi-site CT benchmark, or the user's MSD task folders."""

    seed: int = 0
    source: Literal["synthetic", "msd"] = "synthetic"
    domains: tuple[SyntheticSite, ...] = ("A", "B", "C")
    cases_per_domain: int = Field(24, ge=2)
    shape: tuple[int, int, int] = (64, 64, 40)  # x, y, z voxels
    spacing: tuple[float, float, float] = (1.0, 1.0, 2.0)  # mm
    # source=msd: domain name -> MSD task folder (imagesTr/, labelsTr/, dataset.json)
    msd_domains: dict[str, str] = {}

    @model_validator(mode="after")
    def _check(self) -> CtDataParams:
        if self.source == "msd" and not self.msd_domains:
            raise ValueError("source=msd needs ct_data.msd_domains (name: folder)")
        if min(self.shape) < 16:
            raise ValueError("ct_data.shape needs at least 16 voxels per axis")
        return self


# what `python -m components.ct_data` reads from params.yaml
CtDataStep = step_schema("CtDataStep", ct_data=CtDataParams)
