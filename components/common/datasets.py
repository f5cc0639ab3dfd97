"""Datasets that more than one step trains on."""

from __future__ import annotations

import torch
from torch.utils.data import Dataset

from components.common.io import ProjectError


class BlockDataset(Dataset):
    """The corpus as one token stream (lines joined by EOS) cut into fixed-length blocks."""

    def __init__(self, lines: list[str], tokenizer, block_size: int) -> None:
        ids: list[int] = []
        for line in lines:
            ids.extend(tokenizer(line, add_special_tokens=False)["input_ids"])
            ids.append(tokenizer.eos_token_id)
        n_blocks = len(ids) // block_size
        if n_blocks == 0:
            raise ProjectError(
                f"corpus has {len(ids)} tokens, fewer than one block of {block_size}"
            )
        self.blocks = torch.tensor(ids[: n_blocks * block_size]).view(n_blocks, block_size)

    def __len__(self) -> int:
        return len(self.blocks)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        block = self.blocks[index]
        return {
            "input_ids": block,
            "labels": block.clone(),
            "attention_mask": torch.ones_like(block),
        }
