"""GOVERN's inference budget: the distilled student against the four real teachers, side by side
on the same answer-selection pairs (the paper: the student costs ~1 % of the ensemble).

FLOPs are analytic, 2 x (non-embedding parameters, plus a language model's output projection) x
tokens per pair: a bi-encoder reads the candidate and its share of the question (embedded once per
question), a language-model teacher the candidate, the template and the description; the student
2 x its weights (one MLP pass) plus
nothing for its features (word hashing and averaging looked-up word vectors: additions only).
Wall time is measured on the same pairs in one run: each teacher's scoring call, the student's
featurisation plus forward pass.

    make teachers && python -m bench.govern_cost --pairs 200

Needs the real-teacher lane's pairs (`python -m experiments.govern.real_teachers phenomenon`
writes them) and writes bench/results/govern_cost.md and .json."""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from components.common import models, retrieval  # noqa: E402
from components.govern import student, text_pairs  # noqa: E402
from experiments.govern.real_teachers import TEACHERS, WORK  # noqa: E402
from experiments.report import table  # noqa: E402

RESULTS = REPO_ROOT / "bench" / "results"


def non_embedding_parameters(model: torch.nn.Module) -> int:
    embedded = {
        id(p) for m in model.modules() if isinstance(m, torch.nn.Embedding) for p in m.parameters()
    }
    return sum(p.numel() for p in model.parameters() if id(p) not in embedded)


def teacher(name: str, work: Path):
    """(score function over pairs, its tokenizer, its non-embedding parameters, kind)."""
    if name in ("minilm", "mpnet"):
        source = retrieval.mpnet_dir(work / "mpnet") if name == "mpnet" else None
        encoder = retrieval.SentenceEncoder(source=source)
        return (
            lambda pairs: text_pairs.bi_encoder_scores(encoder, pairs),
            encoder.tokenizer,
            non_embedding_parameters(encoder.model),
            "bi-encoder",
        )
    if name == "smollm2":
        model_dir = models.materialize_smollm2(REPO_ROOT / ".cache/smollm2")
    else:
        model_dir = models.materialize_gguf(models.gemma3_gguf(work / "gemma3"), work / "gemma3/hf")
    model, tokenizer = models.load_causal_lm(model_dir)
    # the output projection is a matmul on every position, tied to the embedding table or not
    head = model.get_output_embeddings().weight.numel()
    return (
        lambda pairs: text_pairs.likelihood_scores(model, tokenizer, pairs),
        tokenizer,
        non_embedding_parameters(model) + head,
        "likelihood",
    )


def tokens_per_pair(tokenizer, pairs: list[dict], kind: str, candidates: int) -> float:
    def count(text: str) -> int:
        return len(tokenizer(text, add_special_tokens=True)["input_ids"])

    if kind == "bi-encoder":
        return float(
            np.mean([count(p["candidate"]) + count(p["query"]) / candidates for p in pairs])
        )
    return float(
        np.mean(
            [
                count(text_pairs.LM_TEMPLATE.format(candidate=p["candidate"]) + " " + p["query"])
                for p in pairs
            ]
        )
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.govern_cost", description=__doc__)
    parser.add_argument("--pairs", type=int, default=200)
    parser.add_argument("--work", type=Path, default=WORK)
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    pairs = json.loads((args.work / "pairs.json").read_text())[: args.pairs]
    candidates = sum(1 for p in pairs if p["group"] == pairs[0]["group"])
    rows = {}
    for name in TEACHERS:
        score, tokenizer, params, kind = teacher(name, args.work)
        score(pairs[:8])  # warm-up
        start = time.perf_counter()
        score(pairs)
        seconds = time.perf_counter() - start
        tokens = tokens_per_pair(tokenizer, pairs, kind, candidates)
        rows[name] = {
            "flops": 2.0 * params * tokens,
            "seconds": seconds / len(pairs),
            "params": params,
            "tokens": tokens,
        }
    static = text_pairs.StaticEmbeddings(retrieval.SentenceEncoder())

    def features(pair: dict) -> list[float]:
        lexical = text_pairs.lexical_features(pair["query"], pair["candidate"])
        return lexical + text_pairs.static_features(static, pair["query"], pair["candidate"])

    mlp = student.build_student(len(features(pairs[0])), 64)
    start = time.perf_counter()
    student.predict(mlp, np.asarray([features(p) for p in pairs], dtype=np.float32))
    seconds = time.perf_counter() - start
    weights = sum(p.numel() for p in mlp.parameters())
    rows["student"] = {
        "flops": 2.0 * weights,
        "seconds": seconds / len(pairs),
        "params": weights,
        "tokens": 0.0,
    }
    ensemble = {k: sum(rows[t][k] for t in TEACHERS) for k in ("flops", "seconds")}
    ratio = {k: rows["student"][k] / ensemble[k] for k in ensemble}
    report = table(
        ("model", "params that compute", "tokens per pair", "GFLOPs per pair", "ms per pair"),
        [
            (
                n,
                f"{r['params']:,}",
                f"{r['tokens']:.1f}" if r["tokens"] else "-",
                f"{r['flops'] / 1e9:.6f}",
                f"{r['seconds'] * 1e3:.3f}",
            )
            for n, r in rows.items()
        ]
        + [
            (
                "ensemble (4 teachers)",
                "",
                "",
                f"{ensemble['flops'] / 1e9:.3f}",
                f"{ensemble['seconds'] * 1e3:.1f}",
            )
        ],
    )
    text = "\n".join(
        [
            "# GOVERN: the student's inference cost against the teachers'",
            "",
            f"{len(pairs)} answer-selection pairs, {platform.processor() or platform.machine()}, "
            f"torch threads {torch.get_num_threads()}.",
            "",
            report,
            "",
            f"student / ensemble: FLOPs **{ratio['flops']:.2e}**, "
            f"wall time **{ratio['seconds']:.2e}** (the paper: about 1e-2).",
        ]
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "govern_cost.md").write_text(text + "\n", encoding="utf-8")
    payload = {"pairs": len(pairs), "rows": rows, "ensemble": ensemble, "ratio": ratio}
    (RESULTS / "govern_cost.json").write_text(json.dumps(payload, indent=1), encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
