"""grm_policy: the GRM policy, SFT on mixed direct and CoT targets.

tiny profile: a base is first trained from scratch (transformers.Trainer) on both targets of the
first half of the training questions, so it has graded direct skill to measure consensus with.
smollm2 / hf: the pretrained model is the base. Then the base runs the direct probe on the other
half; split=consensus (spec default) gives a question its direct target when Consensus >= tau and
its CoT target otherwise; split=random mixes them with P(CoT) = mix_ratio (the code skeleton).
The policy is SFT of the base on those targets."""

from __future__ import annotations

import logging
import random
from collections import Counter
from pathlib import Path
from typing import Any

import mlflow
import torch
from transformers import AutoModelForCausalLM, Trainer

from components.common.io import ProjectError, atomic_path, read_jsonl, write_jsonl
from components.common.models import base_model_source, build_tiny_model, load_tokenizer
from components.common.params import ModelParams, Profile
from components.common.repro import seed_everything
from components.common.sft import SFTDataset, sft_collator
from components.common.tracking import step_run
from components.common.training import checkpoint_dir, save_loss_curve, training_arguments
from components.grm_scorer.consensus import consensus, route
from components.grm_scorer.decode import direct_samples
from components.grm_scorer.params import GrmParams, GrmTrainParams

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
    args = training_arguments(
        checkpoint_dir(name, {"train": train.model_dump(), "seed": seed, "n": len(records)}),
        max_steps=train.max_steps,
        per_device_train_batch_size=train.batch_size,
        learning_rate=train.learning_rate,
        weight_decay=train.weight_decay,
        warmup_steps=int(train.warmup_ratio * train.max_steps),
        logging_steps=train.logging_steps,
        save_strategy="no",
        seed=seed,
    )
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
        metrics: dict[str, float] = {}
        if profile == "tiny":
            tokenizer = load_tokenizer(data_dir / "tokenizer")
            model = build_tiny_model(params.policy.tiny, tokenizer)
            half = len(pairs) // 2
            base_pairs, pairs = pairs[:half], pairs[half:]
            base_records = [r for p in base_pairs for r in (p["direct"], p["cot"])]
            metrics |= train_lm(
                model, tokenizer, base_records, params.policy.base, params.seed, "base", report_dir
            )
        else:
            source = base_model_source(profile, model_params)
            model = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32)
            tokenizer = load_tokenizer(source)
        metrics["parameters"] = float(model.num_parameters())

        # the probe: M direct decodings of the base on each SFT question
        questions = [p["direct"]["prompt"] for p in pairs]
        samples, _ = direct_samples(model, tokenizer, questions, params.gating, params.seed)
        shares = [consensus([s.answer for s in row]).share for row in samples]
        golds = [str(p["direct"]["meta"]["gold"]).lower() for p in pairs]
        metrics["base.direct_accuracy"] = sum(
            row[0].answer == g for row, g in zip(samples, golds, strict=True)
        ) / len(pairs)
        chosen = choose_targets(pairs, shares, params)
        modes = [r["meta"]["mode"] for r in chosen]
        metrics["sft.cot_share"] = modes.count("cot") / len(modes)
        cot_by_k = Counter(r["meta"]["k"] for r in chosen if r["meta"]["mode"] == "cot")
        all_by_k = Counter(r["meta"]["k"] for r in chosen)
        for k in sorted(all_by_k):
            metrics[f"sft.cot_share.k{k}"] = cot_by_k[k] / all_by_k[k]

        if params.policy.lora.enabled:
            model = _with_lora(model, params)
        metrics |= train_lm(
            model, tokenizer, chosen, params.policy.sft, params.seed, "sft", report_dir
        )
        if params.policy.lora.enabled:
            model = model.merge_and_unload()

        write_jsonl(
            report_dir / "split.jsonl",
            [
                {"qid": r["meta"]["qid"], "k": r["meta"]["k"], "consensus": s, "target": m}
                for r, s, m in zip(chosen, shares, modes, strict=True)
            ],
        )
        with atomic_path(out_dir) as tmp:
            model.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
        mlflow.log_metrics(metrics)
        log.info("grm_policy wrote %s: %s", out_dir, metrics)
        return metrics


def _with_lora(model: torch.nn.Module, params: GrmParams) -> torch.nn.Module:
    from peft import LoraConfig, get_peft_model

    lora = params.policy.lora
    config = LoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=list(lora.target_modules),
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, config)
