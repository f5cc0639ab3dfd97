import random

import numpy as np
import torch

from components.common.repro import seed_everything


def test_seed_everything_repeats_every_generator_and_turns_on_deterministic_kernels():
    draws = []
    for _ in range(2):
        seed_everything(7)
        draws.append((random.random(), float(np.random.rand()), float(torch.rand(1))))
    assert draws[0] == draws[1]
    assert torch.are_deterministic_algorithms_enabled()
    assert torch.is_deterministic_algorithms_warn_only_enabled()
