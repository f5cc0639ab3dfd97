"""The MITO loss of ATM's generator turn: answer the question from an attacked document list as
from the clean one.

    L = CE(a | q, D_adv) + beta * mean_i KL( p(. | q, D, a_<i) || p(. | q, D_adv, a_<i) )

over the answer tokens i. Both sequences end in the same answer and are left-padded to one length,
so position t holds the same answer token in both; `labels` (-100 off the answer) are shared.
Logits are shifted (position t predicts token t + 1), so the distribution that predicts the first
answer token counts and the one after the last does not.

Switches (the spec's ablations; defaults are the spec's reading of the paper):
- `sft_branch`: which context the answer's cross-entropy is taken on (adv, clean, or the mean of
  both);
- `kl_target`: the distribution the other is pulled towards (clean: KL(p_clean || p_adv); adv:
  the reverse);
- `kl_norm`: per_answer_token (the mean over answer tokens) or code_batchmean (the authors' code:
  the sum over answer positions divided by batch x sequence length, which makes beta ~100x weaker
  with long prompts and short answers);
- `stopgrad_target`: no gradient through the target distribution."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class MitoConfig:
    beta: float = 0.2  # the paper's code
    sft_branch: Literal["adv", "clean", "both"] = "adv"
    kl_target: Literal["clean", "adv"] = "clean"
    kl_norm: Literal["per_answer_token", "code_batchmean"] = "per_answer_token"
    stopgrad_target: bool = False


def answer_ce(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Token-mean cross-entropy of the answer (shifted; -100 ignored)."""
    return F.cross_entropy(logits[:, :-1].flatten(0, 1), labels[:, 1:].flatten(), ignore_index=-100)


def mito_loss(
    clean_logits: torch.Tensor,
    adv_logits: torch.Tensor,
    labels: torch.Tensor,
    config: MitoConfig = MitoConfig(),
) -> tuple[torch.Tensor, dict[str, float]]:
    """(loss, its parts as floats: ce, kl). Logits: (batch, length, vocab), aligned."""
    ce = {"adv": answer_ce(adv_logits, labels), "clean": answer_ce(clean_logits, labels)}
    sft = (ce["adv"] + ce["clean"]) / 2 if config.sft_branch == "both" else ce[config.sft_branch]
    mask = labels[:, 1:] != -100
    clean = F.log_softmax(clean_logits[:, :-1], dim=-1)
    adv = F.log_softmax(adv_logits[:, :-1], dim=-1)
    target, moved = (clean, adv) if config.kl_target == "clean" else (adv, clean)
    if config.stopgrad_target:
        target = target.detach()
    per_position = (target.exp() * (target - moved)).sum(-1)  # KL(target || moved) per position
    total = (per_position * mask).sum()
    if config.kl_norm == "per_answer_token":
        kl = total / mask.sum().clamp(min=1)
    else:
        kl = total / mask.numel()
    loss = sft + config.beta * kl
    return loss, {"ce": float(sft.detach()), "kl": float(kl.detach())}
