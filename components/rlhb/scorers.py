"""The three scorers, one small BERT built from a config (spec: a 2-layer BertConfig trained from
scratch) with a linear head on the first token:

- the discriminator D(q, r, b): one logit, "is this triplet real?" (RLHB's reward);
- RLHBC's behaviour classifier C(q, r): one head of N levels per metric (cross-entropy), its
  expected counts turned into a scalar by reward shaping (behaviour.shaped_reward);
- pairwise RLHF's reward model r(q, r): one scalar, Bradley-Terry on behaviour-derived pairs.

Inputs are `"Query: q\\nResponse: r"` plus, for D, `"\\n<behaviour text>"` (spec)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from transformers import BertConfig, BertModel, PreTrainedTokenizerBase

from components.rlhb.params import ScorerParams


def scorer_text(query: str, response: str, behaviour: str | None = None) -> str:
    text = f"Query: {query}\nResponse: {response}"
    return text if behaviour is None else f"{text}\n{behaviour}"


class Scorer(nn.Module):
    def __init__(self, vocab_size: int, pad_token_id: int, params: ScorerParams, outputs: int):
        super().__init__()
        config = BertConfig(
            vocab_size=vocab_size,
            hidden_size=params.hidden_size,
            num_hidden_layers=params.num_hidden_layers,
            num_attention_heads=params.num_attention_heads,
            intermediate_size=4 * params.hidden_size,
            max_position_embeddings=params.max_length + 1,
            pad_token_id=pad_token_id,
        )
        self.encoder = BertModel(config, add_pooling_layer=False)
        self.head = nn.Linear(params.hidden_size, outputs)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return self.head(hidden[:, 0])


def build_scorer(tokenizer: PreTrainedTokenizerBase, params: ScorerParams, outputs: int) -> Scorer:
    return Scorer(len(tokenizer), tokenizer.pad_token_id, params, outputs)


def encode(
    tokenizer: PreTrainedTokenizerBase, texts: Sequence[str], max_length: int
) -> dict[str, torch.Tensor]:
    """BOS (or EOS, for a tokenizer without one: the first token, which the head reads) + the
    text, right-padded, cut at `max_length`."""
    first = tokenizer.eos_token_id if tokenizer.bos_token_id is None else tokenizer.bos_token_id
    ids = [
        [first, *seq][:max_length]
        for seq in tokenizer(list(texts), add_special_tokens=False)["input_ids"]
    ]
    width = max(len(i) for i in ids)
    input_ids = torch.full((len(ids), width), tokenizer.pad_token_id, dtype=torch.long)
    attention_mask = torch.zeros((len(ids), width), dtype=torch.long)
    for row, seq in enumerate(ids):
        input_ids[row, : len(seq)] = torch.tensor(seq)
        attention_mask[row, : len(seq)] = 1
    return {"input_ids": input_ids, "attention_mask": attention_mask}


def discriminator_loss(logits: torch.Tensor, real: torch.Tensor, smoothing: float) -> torch.Tensor:
    """BCE against smoothed targets: 1 - smoothing for a real triplet, smoothing for a fake."""
    targets = real.float() * (1 - 2 * smoothing) + smoothing
    return nn.functional.binary_cross_entropy_with_logits(logits, targets)


def bradley_terry_loss(chosen: torch.Tensor, rejected: torch.Tensor) -> torch.Tensor:
    """-log sigmoid(r_chosen - r_rejected), averaged over pairs."""
    return -nn.functional.logsigmoid(chosen - rejected).mean()


def level_loss(logits: torch.Tensor, target_levels: torch.Tensor, bins: int) -> torch.Tensor:
    """Cross-entropy of every metric's head: `logits` (n, M * N), `target_levels` (n, M) 1..N."""
    n, metrics = target_levels.shape
    return nn.functional.cross_entropy(
        logits.view(n * metrics, bins), (target_levels - 1).reshape(-1)
    )
