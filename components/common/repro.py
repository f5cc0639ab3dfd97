"""Seeding: the same seed on the same machine gives the same metrics."""

import os
import random

import numpy as np


def seed_everything(seed: int, *, with_torch: bool = True) -> None:
    """Seed Python, NumPy and torch. A step that never uses torch passes `with_torch=False`: torch
    is imported here otherwise, and the import costs seconds of its start-up."""
    os.environ["PYTHONHASHSEED"] = str(seed)
    random.seed(seed)
    np.random.seed(seed)
    if with_torch:
        import torch

        torch.manual_seed(seed)
        # torch.use_deterministic_algorithms also imports torch._inductor (~1.3 s per step
        # process) to set a flag only torch.compile reads; no step compiles, so set the eager
        # flag alone.
        torch._C._set_deterministic_algorithms(True, warn_only=True)
