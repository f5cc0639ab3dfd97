"""The two segmentation DVC stages: `python -m components.seg_train {train,evaluate} ...` runs
`components.seg_train.<stage>_step.main`, which writes metrics/seg_train.json or
metrics/seg_evaluate.json. A user's volume is segmented by `python -m components.seg_train.predict`
(not a DVC stage)."""

from components.common.cli import stage_main

STAGES = {
    "train": "seg_train: train the dual-task network on the training domains",
    "evaluate": "seg_evaluate: Dice, HD95 per domain; register, maybe move pancreas-seg@champion",
}
raise SystemExit(stage_main("seg_train", STAGES, description=__doc__))
