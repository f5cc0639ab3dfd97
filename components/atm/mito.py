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

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from transformers import Trainer

from components.common.models import render_prompt


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


def encode_pair(
    tokenizer: Any, clean_prompt: str, adv_prompt: str, answer: str, max_length: int
) -> tuple[list[int], list[int], list[int]]:
    """(clean ids, attacked ids, answer ids + EOS); a prompt too long loses its start, never the
    answer (the question sits at the end of the prompt)."""
    answer_ids = tokenizer(answer, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    room = max(max_length - len(answer_ids), 1)
    prompts = [
        tokenizer(render_prompt(tokenizer, p), add_special_tokens=False)["input_ids"][-room:]
        for p in (clean_prompt, adv_prompt)
    ]
    return prompts[0], prompts[1], answer_ids


class MitoCollator:
    """Rows {clean_prompt, adv_prompt, answer} -> both branches left-padded to one length, so the
    answer tokens sit at the same positions; labels (-100 off the answer) are shared, and position
    ids count real tokens only."""

    def __init__(self, tokenizer: Any, max_length: int) -> None:
        self.tokenizer, self.max_length = tokenizer, max_length

    def __call__(self, rows: list[dict[str, str]]) -> dict[str, torch.Tensor]:
        encoded = [
            encode_pair(
                self.tokenizer, r["clean_prompt"], r["adv_prompt"], r["answer"], self.max_length
            )
            for r in rows
        ]
        length = max(len(p) + len(a) for c, d, a in encoded for p in (c, d))
        out = {"labels": torch.tensor([[-100] * (length - len(a)) + a for _, _, a in encoded])}
        for key, branch in (("clean", 0), ("adv", 1)):
            sequences = [pair[branch] + pair[2] for pair in encoded]
            pads = [length - len(s) for s in sequences]
            ids = [
                [self.tokenizer.pad_token_id] * n + s for n, s in zip(pads, sequences, strict=True)
            ]
            mask = torch.tensor([[0] * n + [1] * (length - n) for n in pads])
            out[f"{key}_input_ids"] = torch.tensor(ids)
            out[f"{key}_attention_mask"] = mask
            out[f"{key}_position_ids"] = (mask.cumsum(-1) - 1).clamp(min=0)
        return out


class MitoTrainer(Trainer):
    """`transformers.Trainer` whose loss is MITO over the clean and attacked branches of a batch
    (one forward each); the parts are logged with the loss."""

    def __init__(self, *args: Any, mito: MitoConfig, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.mito = mito
        self._parts: dict[str, list[float]] = {"ce": [], "kl": []}

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        logits = {
            key: model(
                input_ids=inputs[f"{key}_input_ids"],
                attention_mask=inputs[f"{key}_attention_mask"],
                position_ids=inputs[f"{key}_position_ids"],
            ).logits
            for key in ("clean", "adv")
        }
        loss, parts = mito_loss(logits["clean"], logits["adv"], inputs["labels"], self.mito)
        for key, value in parts.items():
            self._parts[key].append(value)
        return (loss, logits) if return_outputs else loss

    def log(self, logs: dict[str, float], *args: Any, **kwargs: Any) -> None:
        if "loss" in logs and self._parts["ce"]:
            for key, values in self._parts.items():
                logs[f"mito_{key}"] = sum(values) / len(values)
                values.clear()
        super().log(logs, *args, **kwargs)


def train_mito(
    params: Any,
    model_dir: Path,
    rows: list[dict[str, str]],
    out_dir: Path,
    report_dir: Path,
    seed: int = 0,
) -> dict[str, float]:
    """MITO on `rows` ({clean_prompt, adv_prompt, answer}) from the model in `model_dir`, saved
    to `out_dir`; `params` is `params.MitoParams`. The loss curve goes to `report_dir` and, with
    its CE and KL parts, to the active MLflow run."""
    from components.common.io import atomic_path
    from components.common.models import load_causal_lm
    from components.common.training import save_loss_curve

    model, tokenizer = load_causal_lm(model_dir)
    config = MitoConfig(
        beta=params.beta,
        sft_branch=params.sft_branch,
        kl_target=params.kl_target,
        kl_norm=params.kl_norm,
        stopgrad_target=params.stopgrad_target,
    )
    with tempfile.TemporaryDirectory(prefix="mito-") as work:
        trainer = MitoTrainer(
            model=model,
            args=params.to_training_arguments(work, seed, save_strategy="no"),
            train_dataset=rows,
            data_collator=MitoCollator(tokenizer, params.max_length),
            mito=config,
        )
        trainer.train()
    metrics = save_loss_curve(trainer, report_dir, "MITO: answer CE + beta KL(clean || attacked)")
    with atomic_path(out_dir) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
    return metrics
