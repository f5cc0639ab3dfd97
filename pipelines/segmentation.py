"""ct_data_prep → seg_train → seg_evaluate as a KFP v2 pipeline (dual-task pancreas lesion
segmentation, leave-one-domain-out), with params.yaml's sections as parameters; each task calls
the same `run()` as its DVC stage."""

from kfp import dsl

from components.common.params import ProjectParams
from components.data_prep.ct_component import ct_data_prep_op
from components.seg_train.component import seg_evaluate_op, seg_train_op


def build_pipeline(params: ProjectParams):
    defaults = params.model_dump(mode="json", exclude_none=True)  # KFP structs have no null

    @dsl.pipeline(
        name="pancreas-segmentation",
        description="Synthetic multi-site CT → dual-task SegResNet → LODO eval + registry",
    )
    def segmentation(
        profile: str = defaults["profile"],
        ct_data: dict = defaults["ct_data"],
        seg_train: dict = defaults["seg_train"],
    ):
        prepared = ct_data_prep_op(profile=profile, params=ct_data)
        trained = seg_train_op(profile=profile, params=seg_train, data=prepared.outputs["data"])
        evaluated = seg_evaluate_op(
            profile=profile,
            params=seg_train,
            data=prepared.outputs["data"],
            model=trained.outputs["model"],
        )
        # training and registry side effects must run every time
        for task in (trained, evaluated):
            task.set_caching_options(False)

    return segmentation
