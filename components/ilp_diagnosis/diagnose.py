"""Phases 1-3 of ILP on one (base, SFT) pair: detect unlearned records, compute their signals,
attribute each to a cause. Pure of I/O: records (without `meta`), models and dynamics in, one row
per record out."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from transformers import PreTrainedTokenizerBase

from components.ilp_diagnosis import attribute, facts, mcq, signals
from components.ilp_diagnosis.params import IlpParams, IlpRules
from components.ilp_diagnosis.templates import normalise_answer, prompt_templates

log = logging.getLogger(__name__)


def questions_for(records: Sequence[dict[str, Any]], params: IlpParams) -> list[mcq.Question]:
    return mcq.build_questions(
        records, params.candidate_pool, params.seeds[0], params.template_min_df
    )


def detect_records(
    model: torch.nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    questions: Sequence[mcq.Question],
    params: IlpParams,
    options: Sequence[tuple[int, ...]] | None = None,
) -> mcq.Detection:
    return mcq.detect(
        model,
        tokenizer,
        questions,
        n=params.n_samples,
        seeds=params.seeds,
        threshold=params.unlearned_threshold,
        max_length=params.max_length,
        max_new_tokens=params.max_new_tokens,
        n_distractors=params.n_distractors,
        distractors=params.distractors,
        score=params.option_score,
        batch_size=params.batch_size,
        temperature=params.temperature,
        options=options,
    )


def _base_view(
    base, tokenizer, questions: list[mcq.Question], options, params: IlpParams
) -> tuple[mcq.Detection, list[str], list[float]]:
    """The base model's pass rates, answer and confidence on the SFT model's MCQs."""
    detection = detect_records(base, tokenizer, questions, params, options=options)
    answers, confidence = [], []
    for question, answer, probs in zip(
        questions, detection.answers(questions), detection.probs, strict=True
    ):
        if answer is not None:
            answers.append(answer)
            confidence.append(float(np.max(probs)))
            continue
        drawn = mcq.sampled_answers(
            base, tokenizer, [question], params.n_samples, params.seeds[0],
            params.max_new_tokens,
        )[0]  # fmt: skip
        answer, count = Counter(normalise_answer(a) for a in drawn).most_common(1)[0]
        answers.append(answer)
        confidence.append(count / len(drawn))
    return detection, answers, confidence


@dataclass(frozen=True)
class DatasetSignals:
    """Per-record signals that need the whole record set (index-aligned with the records)."""

    positions: list[float]
    templates: list[str]
    cluster_sizes: Counter[str]
    rare: list[bool]
    response_tokens: list[int]
    hops: list[int]
    complex: list[bool]
    contradicts: list[list[str]]  # ids of near-duplicates with another answer


def dataset_signals(
    records: Sequence[dict[str, Any]],
    tokenizer: PreTrainedTokenizerBase,
    params: IlpParams,
    embed: Callable[[list[str]], np.ndarray] | None,
) -> DatasetSignals:
    """Positions in the schedule, template clusters, complexity and near-duplicates."""
    rules = params.rules
    templates = prompt_templates(records, params.template_min_df)
    lengths, hops, complex_ = signals.complexity(
        records, tokenizer, rules.complexity_quantile, rules.complex_hops
    )
    threshold = (
        params.cosine_threshold if params.similarity == "embedding" else params.minhash_threshold
    )
    return DatasetSignals(
        positions=signals.stage_positions(records),
        templates=templates,
        cluster_sizes=Counter(templates),
        rare=signals.rare_clusters(templates, rules.rarity_quantile),
        response_tokens=lengths,
        hops=hops,
        complex=complex_,
        contradicts=signals.contradictions(
            records, params.similarity, threshold, params.minhash_perm, embed
        ),
    )


def most_severe_unlearned(detection: mcq.Detection, severity: np.ndarray, top_k: int) -> list[int]:
    """Indices of the unlearned records, lowest gold-option probability first, at most top_k."""
    unlearned = [i for i in np.argsort(severity, kind="stable") if detection.unlearned[i]]
    log.info("unlearned %d of %d records", len(unlearned), len(severity))
    return [int(i) for i in unlearned[:top_k]]


def model_signals(
    records: Sequence[dict[str, Any]],
    top: list[int],
    questions: list[mcq.Question],
    detection: mcq.Detection,
    base: torch.nn.Module,
    sft: torch.nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    params: IlpParams,
) -> list[dict[str, Any]]:
    """For each record of `top`: the base model's view of its MCQ, the base-vs-SFT JSD, the
    fraction of its facts the base knows and how confidently its own fact contradicts the label."""
    sub = [questions[i] for i in top]
    sub_options = [detection.options[i] for i in top]
    base_detection, base_answers, base_confidence = _base_view(
        base, tokenizer, sub, sub_options, params
    )
    free = [k for k, q in enumerate(sub) if q.free_form]
    free_jsd = signals.token_jsd(
        base, sft, tokenizer, [records[top[k]] for k in free], params.max_length
    )
    jsd = {k: v for k, v in zip(free, free_jsd, strict=True)}
    for k, i in enumerate(top):
        if k not in jsd:
            jsd[k] = signals.jsd_bits(base_detection.probs[k], detection.probs[i])
    analysed = [records[i] for i in top]
    candidates = facts.add_candidates(facts.candidate_values(records), params.fact_candidates)
    against = facts.beliefs_against_labels(
        base,
        tokenizer,
        analysed,
        candidates,
        max_length=params.max_length,
        batch_size=params.batch_size,
    )
    known = facts.probe_facts(
        base,
        tokenizer,
        analysed,
        candidates,
        n=params.n_samples,
        seeds=params.seeds,
        threshold=params.unlearned_threshold,
        max_length=params.max_length,
        batch_size=params.batch_size,
    )
    return [
        {
            "base_pass": float(np.nanmean(base_detection.pass_rates[k])),
            "base_answer": base_answers[k],
            "base_confidence": base_confidence[k],
            "base_correct": normalise_answer(base_answers[k])
            == normalise_answer(records[i]["response"]),
            "jsd": float(jsd[k]),
            "fact_known": known[k],
            "belief_against_label": against[k],
        }
        for k, i in enumerate(top)
    ]


def record_signals(
    i: int,
    record: dict[str, Any],
    from_models: dict[str, Any],
    data: DatasetSignals,
    trajectory: list[tuple[int, float]],
    rules: IlpRules,
) -> dict[str, Any]:
    """Every signal of record `i` the attribution rules read."""
    return {
        **from_models,
        "contradicts": data.contradicts[i],
        **signals.trajectory_signals(trajectory, rules.learned_loss, rules.slope_window),
        "stage": record.get("stage", 0),
        "position": data.positions[i],
        "template": data.templates[i],
        "cluster_size": data.cluster_sizes[data.templates[i]],
        "rare": data.rare[i],
        "response_tokens": data.response_tokens[i],
        "hops": data.hops[i],
        "complex": data.complex[i],
    }


def detection_row(
    i: int,
    record: dict[str, Any],
    question: mcq.Question,
    detection: mcq.Detection,
    severity: np.ndarray,
    analysed: bool,
) -> dict[str, Any]:
    return {
        "id": record["id"],
        "task": record["task"],
        "stage": record.get("stage", 0),
        "mode": "free_form" if question.free_form else "mcq",
        "options": [question.candidates[o] for o in detection.options[i]],
        "gold_prob": float(severity[i]),
        "pass_rates": [float(x) for x in detection.pass_rates[i]],
        "unlearned": bool(detection.unlearned[i]),
        "analysed": analysed,
    }


def diagnose(
    records: Sequence[dict[str, Any]],
    base: torch.nn.Module,
    sft: torch.nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    trajectories: dict[str, list[tuple[int, float]]],
    params: IlpParams,
    embed: Callable[[list[str]], np.ndarray] | None = None,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """One row per record (detection for all, signals and attribution for the unlearned top-K)
    and the run-level facts the rules used (tau_J, the early-vs-late gap)."""
    if any("meta" in r for r in records):
        raise ValueError("diagnosis must not see meta: strip it first")
    rules = params.rules
    questions = questions_for(records, params)
    detection = detect_records(sft, tokenizer, questions, params)
    severity = detection.gold_prob()
    top = most_severe_unlearned(detection, severity, params.top_k)

    data = dataset_signals(records, tokenizer, params, embed)
    gap, c4_gate = attribute.c4_gate(list(detection.unlearned), data.positions, rules)
    from_models = model_signals(records, top, questions, detection, base, sft, tokenizer, params)
    by_index = {
        i: record_signals(
            i, records[i], from_models[k], data, trajectories[records[i]["id"]], rules
        )
        for k, i in enumerate(top)
    }
    tau = attribute.jsd_threshold(rules, list(by_index.values()))

    rows = []
    for i, (record, question) in enumerate(zip(records, questions, strict=True)):
        row = detection_row(i, record, question, detection, severity, i in by_index)
        if i in by_index:
            row["signals"] = by_index[i]
            row |= attribute.attribute(by_index[i], rules, tau, c4_gate)
        rows.append(row)
    return rows, {"tau_jsd": tau, "early_late_gap": gap, "c4_gate": c4_gate}
