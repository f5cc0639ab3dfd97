"""Per-row sampling: exact in distribution, greedy at T = 0, independent of batch composition."""

import pytest
import torch

from components.common.models import build_tiny_model
from components.common.params import TinyModelParams
from components.common.sft import greedy_answers
from components.common.tokenizer import train_bpe_tokenizer
from components.grm_scorer.sampling import RowSampler, row_seed, sample, uniform_noise


def test_noise_is_uniform_deterministic_and_per_row():
    seeds = torch.tensor([row_seed(0, i) for i in range(256)])
    u = uniform_noise(seeds, step=3, vocab=64)
    assert u.shape == (256, 64) and float(u.min()) > 0 and float(u.max()) < 1
    assert float(u.mean()) == pytest.approx(0.5, abs=0.01)
    assert torch.equal(uniform_noise(seeds[7:8], 3, 64), u[7:8])  # alone or in a batch
    assert not torch.equal(uniform_noise(seeds, 4, 64), u)


def test_gumbel_max_samples_the_tempered_softmax():
    logits = torch.tensor([[2.0, 1.0, 0.0]]).repeat(6000, 1)
    seeds = [row_seed(1, i) for i in range(6000)]
    for temperature in (1.0, 0.5):
        sampler = RowSampler([temperature] * 6000, [1.0] * 6000, seeds)
        picks = sampler(torch.zeros(6000, 1, dtype=torch.long), logits).argmax(dim=-1)
        freq = torch.bincount(picks, minlength=3).float() / 6000
        assert torch.allclose(freq, (logits[0] / temperature).softmax(-1), atol=0.02)


def test_top_p_and_greedy_rows():
    logits = torch.tensor([[3.0, 2.9, -5.0]] * 3)
    sampler = RowSampler([0.0, 1.0, 1.0], [1.0, 1e-6, 1.0], [1, 2, 3])
    out = sampler(torch.zeros(3, 1, dtype=torch.long), logits)
    assert torch.equal(out[0], logits[0])  # T = 0: untouched, so argmax is greedy
    assert torch.isinf(out[1, 1:]).all() and out[1, 0].isfinite()  # tiny p keeps the top token
    assert out[2].isfinite().all()


@pytest.fixture(scope="module")
def tiny_lm():
    texts = [f"{a}+{b}=\nA:{a + b}" for a in range(10) for b in range(10)]
    tokenizer = train_bpe_tokenizer(texts, 270)
    torch.manual_seed(0)
    arch = TinyModelParams(
        hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2
    )
    return build_tiny_model(arch, tokenizer).eval(), tokenizer


def test_batched_equals_sequential_and_greedy_row_is_greedy(tiny_lm):
    model, tokenizer = tiny_lm
    prompts = ["1+2=", "3+4+5=", "9+9+9+9="]
    temps, top_ps = [0.0, 0.7, 1.0], [1.0, 0.9, 1.0]
    seeds = [row_seed(0, i) for i in range(3)]
    batched = sample(model, tokenizer, prompts, temps, top_ps, seeds, 6, batch_size=8)
    alone = [
        sample(model, tokenizer, [p], [t], [q], [s], 6, batch_size=1)
        for p, t, q, s in zip(prompts, temps, top_ps, seeds, strict=True)
    ]
    assert batched.texts == [a.texts[0] for a in alone]
    assert batched.new_tokens == [a.new_tokens[0] for a in alone]
    assert all(1 <= n <= 6 for n in batched.new_tokens)
    (greedy,) = greedy_answers(model, tokenizer, prompts[:1], 6, batch_size=1)
    first_line = batched.texts[0].splitlines()[0].strip() if batched.texts[0] else ""
    assert first_line == greedy
