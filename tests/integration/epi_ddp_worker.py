"""Worker for test_epi_ddp.py, run under ``torchrun --nproc_per_node=2`` (CPU, gloo).

Each rank trains a tiny Llama wrapped in DDP with an IsolatingOptimizer on its own data, checks
that isolated entries are bit-identical across its last step, and writes what the test compares
(mask and weight digests, per-rank losses) to ``<out_dir>/rank<R>.json``.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist
from transformers import LlamaConfig, LlamaForCausalLM

from components.common.cli import leave_process_group
from components.epi_finetune.optimizer import build_isolating_optimizer
from components.epi_finetune.params import IsolationConfig

VOCAB, STEPS = 64, 6


def digest(tensors: list[torch.Tensor]) -> str:
    h = hashlib.sha256()
    for t in tensors:
        h.update(t.detach().contiguous().cpu().numpy().tobytes())
    return h.hexdigest()


def main(out_dir: Path) -> None:
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    torch.set_num_threads(1)
    torch.manual_seed(0)  # DDP also broadcasts rank 0's weights
    config = LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=32,
    )
    model = torch.nn.parallel.DistributedDataParallel(LlamaForCausalLM(config))
    iso = IsolationConfig(iso_ratio=0.05, mask_interval=2, ema_beta=0.5)
    opt = build_isolating_optimizer(model, iso, lr=1e-2, weight_decay=0.1, max_grad_norm=1.0)
    engine = opt.engine
    data = torch.Generator().manual_seed(1000 + rank)  # different data on every rank
    losses, protected = [], []
    for _ in range(STEPS):
        ids = torch.randint(VOCAB, (4, 16), generator=data)
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        before = [p.detach().clone() for p in engine.params]
        opt.step()
        opt.zero_grad(set_to_none=True)
        pairs = zip(engine.params, before, engine.mask, strict=True)
        protected.append(all(torch.equal(p.detach()[m], b[m]) for p, b, m in pairs))
        losses.append(loss.item())
    masks = [m.flatten() for m in engine.mask]
    gathered = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, digest(masks))
    result = {
        "rank": rank,
        "mask_digest": digest(masks),
        "weights_digest": digest(list(model.module.parameters())),
        "ema_digest": digest(engine.ema[None]),
        "all_mask_digests": gathered,
        "n_isolated": engine.n_isolated,
        "n_eligible": engine.n_eligible,
        "refresh_steps": [h["step"] for h in engine.history],
        "jaccard_prev": [h["jaccard_prev"] for h in engine.history],
        "protected": protected,
        "losses": losses,
    }
    (out_dir / f"rank{rank}.json").write_text(json.dumps(result))
    del model, opt, engine  # DDP goes while the process group lives (see leave_process_group)
    leave_process_group()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
