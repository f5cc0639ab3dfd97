"""data_prep → pretrain → finetune → (ilp_diagnosis, evaluate) as a KFP v2 pipeline.

The pipeline's parameters are params.yaml's sections (dicts), with the file's values as defaults
at compile time; each task calls the same `run()` as the DVC stage of that step."""

from kfp import dsl

from components.common.params import ProjectParams
from components.data_prep.component import data_prep_op
from components.epi_finetune.component import finetune_op
from components.evaluate.component import evaluate_op
from components.ilp_diagnosis.component import ilp_diagnosis_op
from components.pretrain.component import pretrain_op


def build_pipeline(params: ProjectParams):
    defaults = params.model_dump(mode="json", exclude_none=True)  # KFP structs have no null

    @dsl.pipeline(name="llm-sft", description="Synthetic data → tiny base → SFT → eval + registry")
    def llm_sft(
        profile: str = defaults["profile"],
        model: dict = defaults["model"],
        data_prep: dict = defaults["data_prep"],
        pretrain: dict = defaults["pretrain"],
        finetune: dict = defaults["finetune"],
        evaluate: dict = defaults["evaluate"],
        ilp_diagnosis: dict = defaults["ilp_diagnosis"],
    ):
        prepared = data_prep_op(profile=profile, params=data_prep)
        base = pretrain_op(
            profile=profile, model_params=model, params=pretrain, data=prepared.outputs["data"]
        )
        tuned = finetune_op(
            profile=profile,
            params=finetune,
            data=prepared.outputs["data"],
            base=base.outputs["model"],
        )
        diagnosed = ilp_diagnosis_op(
            profile=profile,
            params=ilp_diagnosis,
            data=prepared.outputs["data"],
            base=base.outputs["model"],
            sft=tuned.outputs["model"],
            finetune_reports=tuned.outputs["reports"],
        )
        evaluated = evaluate_op(
            profile=profile,
            params=evaluate,
            data=prepared.outputs["data"],
            model=tuned.outputs["model"],
        )
        # training and registry side effects must run every time
        for task in (base, tuned, diagnosed, evaluated):
            task.set_caching_options(False)

    return llm_sft
