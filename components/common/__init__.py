"""Shared core of every step: params, tracking, models, io, repro, plots, training, sft."""

import os

# Offline at run time: nothing reaches a model hub unless the user opts in (profile hf with a
# reachable hub: HF_HUB_OFFLINE=0).
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", os.environ["HF_HUB_OFFLINE"])
