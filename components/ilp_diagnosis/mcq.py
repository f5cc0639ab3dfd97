"""Detection: every training record as a multiple-choice question, best-of-N sampled answers.

A model fine-tuned on free-form answers is asked the MCQ by cloze scoring: the option
distribution is the softmax over options of each option's log-likelihood (EOS included) as the
response to the rendered prompt, i.e. the model's own answer distribution restricted to the
options; each prompt is encoded once and every option of a batch goes through one forward pass
on its cached keys and values. BoN-N draws N
answers from that distribution per seed; a record is unlearned when its pass rate is below the
threshold on every seed. Records whose answer has too few alternatives for distractors fall back
to N sampled generations scored by exact match.

Distractors are answers other records give to questions of the same template (the same answer
type). `hard` (default) takes the model's most likely wrong answers among a pool of candidates,
`random` random ones: with random distractors the answer the model actually prefers (e.g. a
pre-trained fact that conflicts with the label) is often not an option, and the record looks
learned."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from transformers import PreTrainedTokenizerBase

from components.common.models import render_record_prompt
from components.common.scoring import shared_prefix_logprobs
from components.ilp_diagnosis.templates import normalise_answer, prompt_templates

MIN_ALTERNATIVES = 3  # fewer other answers of a record's type: free-form mode


@dataclass(frozen=True)
class Question:
    id: str
    prompt: str
    answer: str
    candidates: tuple[str, ...]  # gold + other answers of its type; empty: free-form
    gold: int  # index of the answer among the candidates, -1 when free-form
    messages: tuple[dict[str, str], ...] | None = None  # a chat record's conversation

    @property
    def free_form(self) -> bool:
        return not self.candidates

    def rendered(self, tokenizer: PreTrainedTokenizerBase) -> str:
        """The text before the answer, as the record was trained (a chat record's system and
        earlier turns through the chat template)."""
        return render_record_prompt(tokenizer, {"prompt": self.prompt, "messages": self.messages})


def build_questions(
    records: Sequence[dict[str, Any]], pool_size: int, seed: int, min_df: float = 0.05
) -> list[Question]:
    """Gold plus up to `pool_size - 1` other records' answers of the same template cluster (same
    answer type), else of the same task; drawn deterministically from (seed, record id). A record
    whose type has fewer than `min_alternatives` other answers is free-form."""
    templates = prompt_templates(records, min_df)
    pools: dict[str, dict[str, str]] = defaultdict(dict)  # key -> normalised -> first spelling
    for record, template in zip(records, templates, strict=True):
        for key in (template, f"task:{record['task']}"):
            pools[key].setdefault(normalise_answer(record["response"]), record["response"])
    questions = []
    for record, template in zip(records, templates, strict=True):
        gold = normalise_answer(record["response"])
        candidates: tuple[str, ...] = ()
        for key in (template, f"task:{record['task']}"):
            others = sorted(v for k, v in pools[key].items() if k != gold)
            if len(others) >= MIN_ALTERNATIVES:
                rng = random.Random(f"{seed}:{record['id']}")
                drawn = rng.sample(others, min(len(others), pool_size - 1))
                candidates = (record["response"], *drawn)
                break
        questions.append(
            Question(
                record["id"],
                record["prompt"],
                record["response"],
                candidates,
                0 if candidates else -1,
                tuple(record["messages"]) if record.get("messages") else None,
            )
        )
    return questions


def candidate_scores(
    model: torch.nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    questions: Sequence[Question],
    max_length: int,
    batch_size: int = 64,
    score: str = "sum",
) -> list[np.ndarray]:
    """Log-score of every candidate as the response to its rendered prompt (EOS included):
    `sum` = the sequence log-probability (restricted to the candidates, the model's own answer
    distribution), `mean` = length-normalised. The prompt is encoded once per record and all
    candidates of a batch go through one forward pass on its cached keys and values."""
    scored = shared_prefix_logprobs(
        model,
        tokenizer,
        [q.rendered(tokenizer) for q in questions],
        [list(q.candidates) for q in questions],
        max_length,
        batch_size,
    )
    return [
        (sums if score == "sum" else sums / counts.clamp(min=1)).double().numpy()
        for sums, counts in scored
    ]


def choose_options(
    scores: Sequence[np.ndarray], questions: Sequence[Question], n_distractors: int, mode: str
) -> list[tuple[int, ...]]:
    """Candidate indices of each MCQ, gold first: `hard` takes the model's most likely wrong
    answers as distractors, `random` the first ones of the (seeded, shuffled) pool."""
    chosen = []
    for question, values in zip(questions, scores, strict=True):
        others = [i for i in range(len(question.candidates)) if i != question.gold]
        if mode == "hard":
            others = sorted(others, key=lambda i: -values[i])
        chosen.append((question.gold, *others[:n_distractors]) if question.candidates else ())
    return chosen


def option_distribution(
    scores: Sequence[np.ndarray], options: Sequence[tuple[int, ...]], temperature: float = 1.0
) -> list[np.ndarray]:
    """Softmax over each MCQ's options of their scores (gold is option 0)."""
    out = []
    for values, chosen in zip(scores, options, strict=True):
        logits = torch.tensor([values[i] for i in chosen], dtype=torch.float64) / temperature
        out.append(torch.softmax(logits, dim=0).numpy() if chosen else np.zeros(0))
    return out


def bon_pass_rates(
    probs: Sequence[np.ndarray], gold: Sequence[int], n: int, seeds: Sequence[int]
) -> np.ndarray:
    """[records, seeds]: fraction of N answers sampled from each option distribution that are
    the gold option. Rows without options are NaN (scored by `sampled_exact_match`)."""
    width = max((len(p) for p in probs), default=0)
    rates = np.full((len(probs), len(seeds)), np.nan)
    rows = [i for i, p in enumerate(probs) if len(p)]
    if not rows or width == 0:
        return rates
    matrix = torch.zeros(len(rows), width, dtype=torch.float64)
    for r, i in enumerate(rows):
        matrix[r, : len(probs[i])] = torch.from_numpy(probs[i])
    gold_index = torch.tensor([gold[i] for i in rows]).unsqueeze(1)
    for s, seed in enumerate(seeds):
        generator = torch.Generator().manual_seed(seed)
        draws = torch.multinomial(matrix, n, replacement=True, generator=generator)
        rates[rows, s] = (draws == gold_index).double().mean(dim=1).numpy()
    return rates


@torch.no_grad()
def sampled_answers(
    model: torch.nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    questions: Sequence[Question],
    n: int,
    seed: int,
    max_new_tokens: int,
    batch_size: int = 16,
    temperature: float = 1.0,
) -> list[list[str]]:
    """N sampled answers per question (first line, stripped), batched with left padding."""
    padding_side, was_training = tokenizer.padding_side, model.training
    tokenizer.padding_side = "left"
    model.eval()
    torch.manual_seed(seed)
    answers: list[list[str]] = []
    for start in range(0, len(questions), batch_size):
        texts = [q.rendered(tokenizer) for q in questions[start : start + batch_size]]
        batch = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        output = model.generate(
            **batch.to(model.device),
            do_sample=True,
            temperature=temperature,
            top_p=1.0,
            top_k=0,
            num_return_sequences=n,
            max_new_tokens=max_new_tokens,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
        )
        decoded = tokenizer.batch_decode(
            output[:, batch["input_ids"].shape[1] :], skip_special_tokens=True
        )
        lines = [(t.strip().splitlines() or [""])[0].strip() for t in decoded]
        answers.extend(lines[i : i + n] for i in range(0, len(lines), n))
    tokenizer.padding_side = padding_side
    model.train(was_training)
    return answers


def sampled_exact_match(
    model: torch.nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    questions: Sequence[Question],
    n: int,
    seeds: Sequence[int],
    max_new_tokens: int,
    batch_size: int = 16,
) -> np.ndarray:
    """[questions, seeds]: the free-form mode's pass rates (normalised exact match)."""
    rates = np.zeros((len(questions), len(seeds)))
    for s, seed in enumerate(seeds):
        samples = sampled_answers(model, tokenizer, questions, n, seed, max_new_tokens, batch_size)
        for i, (question, drawn) in enumerate(zip(questions, samples, strict=True)):
            gold = normalise_answer(question.answer)
            rates[i, s] = np.mean([normalise_answer(a) == gold for a in drawn])
    return rates


@dataclass
class Detection:
    """The detector's view of one model on every question."""

    options: list[tuple[int, ...]]  # candidate indices of each MCQ, gold first (empty: free-form)
    probs: list[np.ndarray]  # distribution over those options
    pass_rates: np.ndarray  # [questions, seeds]
    unlearned: np.ndarray  # bool [questions]

    def gold_prob(self) -> np.ndarray:
        """Probability of the gold option (free-form: mean pass rate): the severity score."""
        return np.array(
            [
                p[0] if len(p) else float(np.nanmean(r))
                for p, r in zip(self.probs, self.pass_rates, strict=True)
            ]
        )

    def answers(self, questions: Sequence[Question]) -> list[str | None]:
        """The most likely option of each MCQ (None when free-form)."""
        return [
            q.candidates[o[int(np.argmax(p))]] if len(p) else None
            for q, o, p in zip(questions, self.options, self.probs, strict=True)
        ]


def detect(
    model: torch.nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    questions: Sequence[Question],
    *,
    n: int,
    seeds: Sequence[int],
    threshold: float,
    max_length: int,
    max_new_tokens: int,
    n_distractors: int = 3,
    distractors: str = "hard",
    score: str = "sum",
    batch_size: int = 64,
    temperature: float = 1.0,
    options: Sequence[tuple[int, ...]] | None = None,
) -> Detection:
    """BoN-N pass rates of `model` on every question; `options` fixes the MCQs (e.g. the base
    model asked the SFT model's questions), else they are chosen from this model's scores."""
    scores = candidate_scores(model, tokenizer, questions, max_length, batch_size, score)
    if options is None:
        options = choose_options(scores, questions, n_distractors, distractors)
    probs = option_distribution(scores, options, temperature)
    rates = bon_pass_rates(probs, [0] * len(questions), n, seeds)
    free = [i for i, q in enumerate(questions) if q.free_form]
    if free:
        rates[free] = sampled_exact_match(
            model, tokenizer, [questions[i] for i in free], n, seeds, max_new_tokens
        )
    return Detection(list(options), probs, rates, (rates < threshold).all(axis=1))
