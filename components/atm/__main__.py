"""The ATM stages: `python -m components.atm {data,index,retrieve,rounds,evaluate}` runs
`components.atm.<stage>_step.main`, which writes metrics/atm_<stage>.json."""

from components.common.cli import stage_main

STAGES = {
    "data": "atm_data: the people world (or the user's corpus and questions), validated",
    "index": "atm_index: the corpus embedded by MiniLM once (the dense retriever's cache)",
    "retrieve": "atm_retrieve: top-k documents per question, dense and BM25, recall@k",
    "rounds": "atm_rounds: attacker DPO on the generator's NLL, then generator MITO, R times",
    "evaluate": "atm_evaluate: EM on clean and attacked test lists; register the generator",
}
raise SystemExit(stage_main("atm", STAGES, description=__doc__))
