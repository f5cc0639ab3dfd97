"""The two segmentation DVC stages: `python -m components.seg_train {train,evaluate} ...` runs
`components.seg_train.<stage>_step.main`, which writes metrics/seg_train.json or
metrics/seg_evaluate.json. A user's volume is segmented by `python -m components.seg_train.predict`
(not a DVC stage)."""

from components.common.cli import stage_main

raise SystemExit(stage_main("seg_train", ("train", "evaluate")))
