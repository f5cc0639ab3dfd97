"""The [D] cheaper importance estimators (``ema_every``, ``ema_dtype``), pinned by hand values.

Two-element tensor, beta = 0.5; no refresh is due unless a test says so (warm-up 100)."""

from __future__ import annotations

import pydantic
import pytest
import torch

from components.epi_finetune.engine import ParameterIsolation
from components.epi_finetune.params import IsolationConfig


def engine_of(**config) -> tuple[ParameterIsolation, torch.nn.Parameter]:
    w = torch.nn.Parameter(torch.zeros(2))
    config = {"ema_beta": 0.5, "mask_interval": 100, "warmup_steps": 100} | config
    return ParameterIsolation([("w", w)], IsolationConfig(**config)), w


def feed(engine: ParameterIsolation, w: torch.nn.Parameter, grad: list[float]) -> list[float]:
    w.grad = torch.tensor(grad)
    engine.accumulate()
    return engine.ema[None][0].tolist()


def test_ema_every_two_steps_weighs_each_update_for_the_two_steps_it_stands_for():
    """s = 2: steps 1 and 3 are skipped; step 2: F = 0.25 * 0 + 0.75 * [4, 0] = [3, 0];
    step 4: F = 0.25 * [3, 0] + 0.75 * [16, 4] = [12.75, 3]."""
    engine, w = engine_of(ema_every=2)
    assert feed(engine, w, [2.0, 4.0]) == [0.0, 0.0]
    assert feed(engine, w, [2.0, 0.0]) == [3.0, 0.0]
    assert feed(engine, w, [9.0, 9.0]) == [3.0, 0.0]
    assert feed(engine, w, [4.0, 2.0]) == [12.75, 3.0]
    assert engine.step == 4


def test_ema_every_updates_on_a_refresh_step_whatever_the_gap():
    """s = 4, first refresh at step 3: step 3 updates with the gap of 3 steps,
    F = (1 - 0.125) * [1, 4] = [0.875, 3.5], and the refresh isolates the larger entry."""
    engine, w = engine_of(ema_every=4, warmup_steps=3, iso_ratio=0.5)
    feed(engine, w, [5.0, 0.0])
    feed(engine, w, [5.0, 0.0])
    assert feed(engine, w, [1.0, 2.0]) == [0.875, 3.5]
    engine.maybe_refresh()
    assert engine.indices[0].tolist() == [1]


def test_ema_every_one_is_the_exact_estimator():
    """s = 1: F = 0.5 * [4, 0] = [2, 0], then 0.5 * [2, 0] + 0.5 * [0, 4] = [1, 2]."""
    engine, w = engine_of(ema_every=1)
    assert feed(engine, w, [2.0, 0.0]) == [2.0, 0.0]
    assert feed(engine, w, [0.0, 2.0]) == [1.0, 2.0]


def test_bf16_ema_rounds_each_update_to_bf16():
    """g = 1 + 2**-6: g*g = 1 + 2**-5 + 2**-12, stored in bf16 (7 mantissa bits) as
    1 + 2**-5 = 1.03125; F = 0.5 * 1.03125 = 0.515625 (fp32: 0.5157470703125). The EMA costs
    2 bytes per entry."""
    engine, w = engine_of(ema_dtype="bfloat16")
    g = 1 + 2**-6
    assert feed(engine, w, [g, 0.0]) == [0.515625, 0.0]
    assert engine.ema[None][0].dtype == torch.bfloat16
    assert engine.memory_bytes() == 2 * 2  # the EMA only: no mask yet
    exact, w32 = engine_of()
    assert feed(exact, w32, [g, 0.0]) == [0.5157470703125, 0.0]


def test_a_checkpoint_keeps_the_steps_since_the_last_update():
    """Saved after the skipped step 1 and loaded: step 2 still updates with a gap of 2."""
    engine, w = engine_of(ema_every=2)
    feed(engine, w, [9.0, 9.0])
    resumed, w2 = engine_of(ema_every=2)
    resumed.load_state_dict(engine.state_dict())
    assert feed(resumed, w2, [2.0, 0.0]) == [3.0, 0.0]


def test_a_loaded_ema_takes_the_configured_dtype():
    engine, w = engine_of()
    feed(engine, w, [2.0, 0.0])
    bf16, _ = engine_of(ema_dtype="bfloat16")
    bf16.load_state_dict(engine.state_dict())
    assert bf16.ema[None][0].dtype == torch.bfloat16
    assert bf16.ema[None][0].tolist() == [2.0, 0.0]


@pytest.mark.parametrize("bad", [{"ema_every": 0}, {"ema_dtype": "float16"}])
def test_estimator_options_are_validated(bad):
    with pytest.raises(pydantic.ValidationError):
        IsolationConfig(**bad)
