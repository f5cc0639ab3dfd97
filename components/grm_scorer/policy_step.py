"""grm_policy: the GRM policy, SFT on mixed direct and CoT targets.

    python -m components.grm_scorer policy --data data/reasoning --out models/grm_policy

tiny profile: a base is first trained from scratch (transformers.Trainer) on both targets of the
first half of the training questions, so it has graded direct skill to measure consensus with.
smollm2 / hf: the pretrained model is the base. Then the base runs the direct probe on the other
half; split=consensus (the paper's recipe) gives a question its direct target when Consensus >= tau
and its CoT target otherwise; split=random mixes them with P(CoT) = mix_ratio (the reference
code's recipe). The policy is SFT of the base on those targets."""

from __future__ import annotations

import logging
import random
from collections import Counter
from pathlib import Path
from typing import Any

import mlflow
import torch
from transformers import AutoModelForCausalLM, Trainer

from components.common.cli import path_arguments, step_main, step_parser
from components.common.io import ProjectError, atomic_path, read_jsonl, write_jsonl
from components.common.models import (
    base_model_source,
    build_tiny_model,
    load_tokenizer,
    with_lora,
)
from components.common.params import ModelParams, Profile
from components.common.repro import seed_everything
from components.common.sft import SFTDataset, sft_collator
from components.common.tracking import step_run
from components.common.training import checkpoint_dir, save_loss_curve
from components.grm_scorer.consensus import consensus, route
from components.grm_scorer.decode import direct_samples
from components.grm_scorer.params import GrmParams, GrmStep, GrmTrainParams

log = logging.getLogger(__name__)


def paired_records(path: Path) -> list[dict[str, dict[str, Any]]]:
    """The file's records grouped per question: [{"direct": record, "cot": record}, ...]."""
    by_qid: dict[str, dict[str, Any]] = {}
    for line, record in enumerate(read_jsonl(path), start=1):
        meta = record.get("meta")
        if not isinstance(meta, dict) or meta.get("mode") not in ("direct", "cot"):
            raise ProjectError("needs meta.mode direct or cot", file=path, line=line, field="meta")
        by_qid.setdefault(meta["qid"], {})[meta["mode"]] = record
    pairs = list(by_qid.values())
    if not pairs or any(set(p) != {"direct", "cot"} for p in pairs):
        raise ProjectError("every question needs a direct and a cot record", file=path)
    return pairs


def train_lm(
    model: torch.nn.Module,
    tokenizer: Any,
    records: list[dict[str, Any]],
    train: GrmTrainParams,
    seed: int,
    name: str,
    report_dir: Path,
) -> dict[str, float]:
    """One Trainer run in a nested MLflow run (base and SFT would clash on param names)."""
    output_dir = checkpoint_dir(
        name, {"train": train.model_dump(), "seed": seed, "n": len(records)}
    )
    args = train.to_training_arguments(output_dir, seed, save_strategy="no")
    with mlflow.start_run(run_name=name, nested=True):
        trainer = Trainer(
            model=model,
            args=args,
            train_dataset=SFTDataset(records, tokenizer, train.max_length),
            data_collator=sft_collator(tokenizer),
        )
        result = trainer.train()
        summary = save_loss_curve(trainer, report_dir / name, f"{name} loss")
    return {
        f"{name}.train_loss": result.training_loss,
        **{f"{name}.{k}": v for k, v in summary.items()},
    }


def choose_targets(
    pairs: list[dict[str, dict[str, Any]]], shares: list[float], params: GrmParams
) -> list[dict[str, Any]]:
    """One SFT record per question: the uncertainty-based split or the 50/50-style random one."""
    rng = random.Random(params.seed)
    chosen = []
    for pair, share in zip(pairs, shares, strict=True):
        if params.policy.split == "consensus":
            mode = route(share, params.gating.tau)
        else:
            mode = "cot" if rng.random() < params.policy.mix_ratio else "direct"
        chosen.append(pair[mode])
    return chosen


def base_model(
    params: GrmParams,
    model_params: ModelParams,
    profile: Profile,
    data_dir: Path,
    pairs: list[dict[str, dict[str, Any]]],
    report_dir: Path,
) -> tuple[torch.nn.Module, Any, list[dict[str, dict[str, Any]]], dict[str, float]]:
    """The base the probe measures: trained here on the first half of `pairs` (tiny profile), or
    the pretrained model. Returns it, its tokenizer, the pairs left for SFT and the metrics."""
    if profile != "tiny":
        source = base_model_source(profile, model_params)
        model = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32)
        return model, load_tokenizer(source), pairs, {}
    tokenizer = load_tokenizer(data_dir / "tokenizer")
    model = build_tiny_model(params.policy.tiny, tokenizer)
    half = len(pairs) // 2
    base_records = [r for p in pairs[:half] for r in (p["direct"], p["cot"])]
    metrics = train_lm(
        model, tokenizer, base_records, params.policy.base, params.seed, "base", report_dir
    )
    return model, tokenizer, pairs[half:], metrics


def probe_shares(
    model: torch.nn.Module,
    tokenizer: Any,
    pairs: list[dict[str, dict[str, Any]]],
    params: GrmParams,
) -> tuple[list[float], dict[str, float]]:
    """The probe: M direct decodings of the base on each SFT question; its consensus shares."""
    questions = [p["direct"]["prompt"] for p in pairs]
    samples, _ = direct_samples(model, tokenizer, questions, params.gating, params.seed)
    shares = [consensus([s.answer for s in row]).share for row in samples]
    golds = [str(p["direct"]["meta"]["gold"]).lower() for p in pairs]
    accuracy = sum(row[0].answer == g for row, g in zip(samples, golds, strict=True)) / len(pairs)
    return shares, {"base.direct_accuracy": accuracy}


def split_metrics(chosen: list[dict[str, Any]]) -> dict[str, float]:
    """The share of CoT targets, overall and per difficulty k."""
    modes = [r["meta"]["mode"] for r in chosen]
    metrics = {"sft.cot_share": modes.count("cot") / len(modes)}
    cot_by_k = Counter(r["meta"]["k"] for r in chosen if r["meta"]["mode"] == "cot")
    all_by_k = Counter(r["meta"]["k"] for r in chosen)
    for k in sorted(all_by_k):
        metrics[f"sft.cot_share.k{k}"] = cot_by_k[k] / all_by_k[k]
    return metrics


def sft(
    model: torch.nn.Module,
    tokenizer: Any,
    chosen: list[dict[str, Any]],
    params: GrmParams,
    report_dir: Path,
) -> tuple[torch.nn.Module, dict[str, float]]:
    """SFT of the base on the chosen targets (through LoRA when enabled, merged back after)."""
    if params.policy.lora.enabled:
        model = with_lora(model, params.policy.lora)
    metrics = train_lm(model, tokenizer, chosen, params.policy.sft, params.seed, "sft", report_dir)
    if params.policy.lora.enabled:
        model = model.merge_and_unload()
    return model, metrics


def run(
    params: GrmParams,
    model_params: ModelParams,
    profile: Profile,
    data_dir: Path,
    out_dir: Path,
    report_dir: Path,
) -> dict[str, float]:
    seed_everything(params.seed)
    with step_run("grm_policy", profile, params.policy):
        pairs = paired_records(data_dir / "train.jsonl")
        model, tokenizer, pairs, metrics = base_model(
            params, model_params, profile, data_dir, pairs, report_dir
        )
        metrics["parameters"] = float(model.num_parameters())
        shares, probe = probe_shares(model, tokenizer, pairs, params)
        metrics |= probe
        chosen = choose_targets(pairs, shares, params)
        metrics |= split_metrics(chosen)
        model, sft_metrics = sft(model, tokenizer, chosen, params, report_dir)
        metrics |= sft_metrics

        write_jsonl(
            report_dir / "split.jsonl",
            [
                {
                    "qid": r["meta"]["qid"],
                    "k": r["meta"]["k"],
                    "consensus": share,
                    "target": r["meta"]["mode"],
                }
                for r, share in zip(chosen, shares, strict=True)
            ],
        )
        with atomic_path(out_dir) as tmp:
            model.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
        mlflow.log_metrics(metrics)
        log.info("grm_policy wrote %s: %s", out_dir, metrics)
        return metrics


def main(argv: list[str] | None = None) -> int:
    parser = step_parser(
        "components.grm_scorer policy",
        "Train the E-GRM policy: a base (tiny profile: from scratch), then SFT on direct or "
        "step-by-step targets chosen by the base's consensus.",
        GrmStep,
    )
    path_arguments(
        parser, "inputs", data=("data/reasoning", "grm_data's output: the reasoning questions")
    )
    path_arguments(
        parser,
        "outputs",
        out=("models/grm_policy", "the policy model and its tokenizer"),
        reports=(
            "reports/grm/policy",
            "the base and SFT loss curves, split.jsonl (direct or CoT target per question)",
        ),
    )
    args = parser.parse_args(argv)
    return step_main(
        "grm_policy",
        args,
        GrmStep,
        lambda p: run(p.grm, p.model, p.profile, args.data, args.out, args.reports),
    )
