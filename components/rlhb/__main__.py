"""The RLHB stages: `python -m components.rlhb {data,train,evaluate}` runs
`components.rlhb.<stage>_step.main`, which writes metrics/rlhb_<stage>.json."""

from components.common.cli import stage_main

STAGES = {
    "data": "rlhb_data: behaviour logs (simulated or the user's), validated, binned, as text",
    "train": "rlhb_train: behaviour-conditioned SFT, then RLHB's adversarial RL and the baselines",
    "evaluate": "rlhb_evaluate: every generator under b*; register the RLHB generator",
}
raise SystemExit(stage_main("rlhb", STAGES, description=__doc__))
