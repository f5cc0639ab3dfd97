"""Seeding: the same seed on the same machine gives the same metrics."""

import os
import random

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    os.environ["PYTHONHASHSEED"] = str(seed)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    # torch.use_deterministic_algorithms also imports torch._inductor (~1.3 s per step process) to
    # set a flag only torch.compile reads; no step compiles, so set the eager flag alone.
    torch._C._set_deterministic_algorithms(True, warn_only=True)
