"""grm_data → grm_policy → grm_scorer → grm_evaluate (E-GRM reward modeling) as a KFP v2 pipeline.

Parameters are params.yaml's sections (dicts) with the file's values as compile-time defaults;
each task calls the same `run()` as the DVC stage of that step."""

from kfp import dsl

from components.common.params import ProjectParams
from components.grm_scorer.component import (
    grm_data_op,
    grm_evaluate_op,
    grm_policy_op,
    grm_scorer_op,
)


def build_pipeline(params: ProjectParams):
    defaults = params.model_dump(mode="json", exclude_none=True)  # KFP structs have no null

    @dsl.pipeline(
        name="reward-egrm",
        description="Reasoning data → GRM policy SFT → hybrid-loss scorer → gated evaluation",
    )
    def reward(
        profile: str = defaults["profile"],
        model: dict = defaults["model"],
        reward_data: dict = defaults["reward_data"],
        grm: dict = defaults["grm"],
    ):
        data = grm_data_op(profile=profile, params=reward_data)
        policy = grm_policy_op(
            profile=profile, model_params=model, params=grm, data=data.outputs["data"]
        )
        scorer = grm_scorer_op(
            profile=profile,
            params=grm,
            data=data.outputs["data"],
            policy=policy.outputs["policy"],
        )
        evaluated = grm_evaluate_op(
            profile=profile,
            params=grm,
            data=data.outputs["data"],
            policy=policy.outputs["policy"],
            scorer=scorer.outputs["scorer"],
        )
        # training and registry side effects must run every time
        for task in (policy, scorer, evaluated):
            task.set_caching_options(False)

    return reward
