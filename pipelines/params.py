"""The whole of params.yaml: every room's sections, assembled (the pipelines take them all).

A step reads only its own view (`components.common.params.step_schema`); this model is for the
pipelines, the studies and the check that params.yaml as a whole is valid."""

from __future__ import annotations

import os

from pydantic import Field

from components.atm.params import AtmDataParams, AtmParams, RetrieveParams
from components.common.params import ModelParams, Profile, StrictModel, load_params
from components.ct_data.params import CtDataParams
from components.data_prep.params import DataPrepParams
from components.epi_finetune.params import FinetuneParams
from components.evaluate.params import EvaluateParams
from components.govern.params import GovernDataParams, GovernParams
from components.grm_scorer.params import GrmDataParams, GrmParams
from components.ilp_diagnosis.params import IlpParams
from components.knowtuning.params import KnowTuningDataParams, KnowTuningParams
from components.pretrain.params import PretrainParams
from components.rlhb.params import RlhbDataParams, RlhbParams
from components.seg_train.params import SegTrainParams


class ProjectParams(StrictModel):
    profile: Profile = "tiny"
    model: ModelParams = ModelParams()
    data_prep: DataPrepParams = Field(default_factory=DataPrepParams)
    pretrain: PretrainParams = Field(default_factory=PretrainParams)
    finetune: FinetuneParams = Field(default_factory=FinetuneParams)
    evaluate: EvaluateParams = Field(default_factory=EvaluateParams)
    ilp_diagnosis: IlpParams = Field(default_factory=IlpParams)
    ct_data: CtDataParams = Field(default_factory=CtDataParams)
    seg_train: SegTrainParams = Field(default_factory=SegTrainParams)
    grm_data: GrmDataParams = Field(default_factory=GrmDataParams)
    grm: GrmParams = Field(default_factory=GrmParams)
    knowtuning_data: KnowTuningDataParams = Field(default_factory=KnowTuningDataParams)
    # KnowTuning's base model and SFT runs: the pretrain and finetune steps' params
    knowtuning_base: PretrainParams = Field(default_factory=PretrainParams)
    knowtuning_sft: FinetuneParams = Field(default_factory=lambda: FinetuneParams(method="full"))
    knowtuning: KnowTuningParams = Field(default_factory=KnowTuningParams)
    # ATM: its models' architecture (a longer context), its base and warm-ups through pretrain
    # and finetune, and its own sections
    atm_model: ModelParams = ModelParams()
    atm_data: AtmDataParams = Field(default_factory=AtmDataParams)
    atm_retrieve: RetrieveParams = Field(default_factory=RetrieveParams)
    atm_base: PretrainParams = Field(default_factory=PretrainParams)
    atm_sft: FinetuneParams = Field(default_factory=lambda: FinetuneParams(method="full"))
    atm: AtmParams = Field(default_factory=AtmParams)
    govern_data: GovernDataParams = Field(default_factory=GovernDataParams)
    govern: GovernParams = Field(default_factory=GovernParams)
    rlhb_data: RlhbDataParams = Field(default_factory=RlhbDataParams)
    rlhb: RlhbParams = Field(default_factory=RlhbParams)


def load_project_params(
    path: str | os.PathLike = "params.yaml", overrides: list[str] | tuple[str, ...] = ()
) -> ProjectParams:
    """Every section of params.yaml, validated."""
    return load_params(path, overrides, ProjectParams)
