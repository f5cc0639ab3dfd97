"""The KnowTuning DVC stages: `python -m components.knowtuning {data,augment,compare,evaluate}` runs
`components.knowtuning.<stage>_step.main`, which writes metrics/knowtuning_<stage>.json. The base
model and the two SFT runs are the pretrain and finetune steps (`--section` knowtuning_base and
knowtuning_sft)."""

from components.common.cli import stage_main

STAGES = {
    "data": "knowtuning_data: the entity world (or the user's records), validated",
    "augment": "knowtuning_augment: the hardest facts of each answer as fine-grained QA pairs (KA)",
    "compare": "knowtuning_compare: a negative per aspect, DPO + SFT term from the KA model (KC)",
    "evaluate": "knowtuning_evaluate: completeness, factuality, logicality; register the model",
}
raise SystemExit(stage_main("knowtuning", STAGES, description=__doc__))
