"""The four E-GRM DVC stages: `python -m components.grm_scorer {data,policy,scorer,evaluate} ...`
runs `components.grm_scorer.<stage>_step.main`, which writes metrics/grm_<stage>.json."""

from components.common.cli import stage_main

raise SystemExit(stage_main("grm_scorer", ("data", "policy", "scorer", "evaluate")))
