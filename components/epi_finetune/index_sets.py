"""Sparse index sets: the sorted flat (row-major) indices of the isolated entries.

A mask is stored as indices, never as a dense bool tensor. "Local" indices point into one tensor;
"global" indices point into the concatenation of all eligible tensors, so a set over every tensor
is one sorted 1-D tensor and set operations cost a fixed number of kernels."""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Iterable, Sequence

import torch
from torch import Tensor


def index_dtype(numel: int) -> torch.dtype:
    """The smallest dtype that indexes a tensor of ``numel`` entries (int32, else int64)."""
    return torch.int32 if numel < 2**31 else torch.int64


def put_at(target: Tensor, indices: Tensor, values: Tensor) -> Tensor:
    """``target.put_(indices, values)`` for an index set (flat indices, each at most once)."""
    with warnings.catch_warnings():
        # Under deterministic algorithms (common.repro) torch warns that put_ is not deterministic:
        # with a repeated index, which write lands is undefined. An index set repeats none, so the
        # result is deterministic and the warning says nothing a user could act on.
        warnings.filterwarnings("ignore", "put_ does not have a deterministic", UserWarning)
        return target.put_(indices, values)


def mask_to_indices(mask: Tensor) -> Tensor:
    """Sorted flat (row-major) indices of the True entries, int64."""
    return mask.reshape(-1).nonzero().squeeze(1)


def indices_to_mask(indices: Tensor, like: Tensor) -> Tensor:
    """Dense bool mask shaped like ``like`` with True at ``indices``."""
    flat = torch.zeros(like.numel(), dtype=torch.bool, device=like.device)
    flat[indices.to(device=like.device, dtype=torch.long)] = True
    return flat.view(like.shape)


def member(sorted_ref: Tensor, query: Tensor) -> tuple[Tensor, Tensor]:
    """For each entry of ``query``: is it in ``sorted_ref``, and at which position."""
    if sorted_ref.numel() == 0 or query.numel() == 0:
        return (
            torch.zeros(query.shape, dtype=torch.bool, device=query.device),
            torch.zeros(query.shape, dtype=torch.long, device=query.device),
        )
    query = query.to(sorted_ref.dtype)
    pos = torch.searchsorted(sorted_ref, query).clamp_(max=sorted_ref.numel() - 1)
    return sorted_ref[pos] == query, pos


def union(sets: Iterable[Tensor], device: torch.device) -> Tensor:
    """Sorted union of global index sets."""
    sets = list(sets)
    if not sets:
        return torch.zeros(0, dtype=torch.long, device=device)
    return sets[0] if len(sets) == 1 else torch.unique(torch.cat(sets))


def split_global(indices: Tensor, sizes: Sequence[int]) -> list[Tensor]:
    """Sorted indices into the concatenation of tensors of ``sizes`` -> per-tensor flat indices."""
    offsets = torch.tensor([0, *itertools.accumulate(sizes)], device=indices.device)
    counts = torch.searchsorted(indices, offsets).diff().tolist()
    shift = torch.repeat_interleave(offsets[:-1], torch.tensor(counts, device=indices.device))
    return list((indices - shift).split(counts))


def global_to_masks(indices: Tensor, like: Sequence[Tensor]) -> list[Tensor]:
    """Sorted global indices -> one dense bool mask per tensor of ``like``."""
    local = split_global(indices, [t.numel() for t in like])
    return [indices_to_mask(i, t) for i, t in zip(local, like, strict=True)]
