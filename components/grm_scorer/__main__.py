"""The five E-GRM DVC stages: `python -m components.grm_scorer {data,policy,scorer,grpo,evaluate}`
runs `components.grm_scorer.<stage>_step.main`, which writes metrics/grm_<stage>.json."""

from components.common.cli import stage_main

STAGES = {
    "data": "grm_data: write and validate the digit-sum reasoning data",
    "policy": "grm_policy: train the policy (direct or step-by-step targets by consensus)",
    "scorer": "grm_scorer: train the path scorer, register grm-scorer@challenger",
    "grpo": "grm_grpo: GRPO of the policy with the scorer's pairwise reward (steps 0: none)",
    "evaluate": "grm_evaluate: every route, the tau sweep, AUROC; maybe promote @champion",
}
raise SystemExit(stage_main("grm_scorer", STAGES, description=__doc__))
