"""The GOVERN stages: `python -m components.govern {data,distill,evaluate}` runs
`components.govern.<stage>_step.main`, which writes metrics/govern_<stage>.json."""

from components.common.cli import stage_main

STAGES = {
    "data": "govern_data: samples with their cached teacher outputs, validated",
    "distill": "govern_distill: the student by GOVERN's vote, and the baselines' students",
    "evaluate": "govern_evaluate: students against teachers on test; register the student",
}
raise SystemExit(stage_main("govern", STAGES, description=__doc__))
