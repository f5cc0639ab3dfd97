"""Answer selection over text pairs: real teachers' scores, and the student's cheap features.

A question is a short description (Wikipedia's, e.g. "1968 film by Stanley Kubrick"); its
candidates are the opening sentences of several articles, one of which it describes. Teachers:

- bi-encoders (MiniLM, mpnet): the cosine of the description's and the candidate's embeddings;
- language models (SmolLM2, Gemma 3): the mean log-probability of the description after the
  candidate, `<candidate>\\nIn short:` + ` <description>` (the description is the same for every
  candidate of a question, so its fluency cancels out within the question).

Each teacher's scores are put on one scale by a label-free z-score over the unlabeled pool (the
vote compares teachers with the student, so their logits must be comparable).

The student reads `lexical_features` (hashed word overlap of the pair and three counts) and
`static_features` (MiniLM's input word vectors, averaged over each text, no transformer layer:
the product of the two means and their absolute difference); its MLP costs about 10^5 FLOPs per
pair against the teachers' 10^10."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

WORD = re.compile(r"[a-z0-9]+")
LM_TEMPLATE = "{candidate}\nIn short:"


def words(text: str) -> set[str]:
    return set(WORD.findall(text.lower()))


def bucket(word: str, dim: int) -> int:
    return int.from_bytes(hashlib.blake2b(word.encode(), digest_size=4).digest(), "big") % dim


def lexical_features(query: str, candidate: str, dim: int = 256) -> list[float]:
    """dim hashed buckets of the words the two share, then |shared|, Jaccard, the length ratio."""
    q, c = words(query), words(candidate)
    shared = q & c
    hashed = [0.0] * dim
    for word in shared:
        hashed[bucket(word, dim)] += 1.0
    union = len(q | c) or 1
    ratio = len(c) / max(len(q), 1)
    return [*hashed, float(len(shared)), len(shared) / union, float(np.log1p(ratio))]


class StaticEmbeddings:
    """A bi-encoder's input word-vector table, used alone: the mean vector of a text's tokens."""

    def __init__(self, encoder: Any) -> None:
        self.tokenizer = encoder.tokenizer
        self.table = encoder.model.get_input_embeddings().weight.detach().numpy()

    def mean(self, text: str) -> np.ndarray:
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"] or [0]
        return self.table[ids].mean(axis=0)


def static_features(embeddings: StaticEmbeddings, query: str, candidate: str) -> list[float]:
    """[q * c, |q - c|] of the two texts' mean word vectors (2 x the table's width)."""
    q, c = embeddings.mean(query), embeddings.mean(candidate)
    return [*(q * c).round(6).tolist(), *np.abs(q - c).round(6).tolist()]


def first_sentence(text: str) -> str:
    match = re.match(r"(.+?[.!?])(\s|$)", text.strip())
    return match.group(1) if match else text.strip()


def answer_selection(
    summaries: dict[str, dict[str, Any]], questions: int, candidates: int, seed: int
) -> list[dict[str, Any]]:
    """`questions` descriptions, each with `candidates` opening sentences (its own article's and,
    as negatives, those of its topic that share the most words with the description, so word
    overlap alone does not decide), shuffled; one pair per candidate, `label` 1 for its own."""
    rng = np.random.default_rng(seed)
    usable = [
        s
        for s in summaries.values()
        if s.get("description") and s.get("extract") and len(words(s["description"])) >= 2
    ]
    by_topic: dict[str, list[dict]] = {}
    for s in usable:
        by_topic.setdefault(s.get("topic") or "", []).append(s)
    chosen = rng.choice(len(usable), size=min(questions, len(usable)), replace=False)
    pairs = []
    for n, index in enumerate(chosen):
        own = usable[int(index)]
        pool = [s for s in by_topic[own.get("topic") or ""] if s["title"] != own["title"]]
        described = words(own["description"])
        tiebreak = rng.random(len(pool))
        overlap = [-len(described & words(first_sentence(s["extract"]))) for s in pool]
        others = [pool[int(i)] for i in np.lexsort((tiebreak, overlap))[: candidates - 1]]
        group = [own, *others]
        for position in rng.permutation(len(group)):
            article = group[int(position)]
            pairs.append(
                {
                    "id": f"q{n}-{article['title']}",
                    "group": f"q{n}",
                    "query": own["description"],
                    "candidate": first_sentence(article["extract"]),
                    "label": int(article is own),
                }
            )
    return pairs


def bi_encoder_scores(encoder: Any, pairs: Sequence[dict]) -> np.ndarray:
    """cos(query, candidate) per pair (the encoder's embeddings are unit vectors)."""
    queries = sorted({p["query"] for p in pairs})
    q_vectors = dict(zip(queries, encoder.encode(queries), strict=True))
    c_vectors = encoder.encode([p["candidate"] for p in pairs])
    return np.asarray([q_vectors[p["query"]] @ c for p, c in zip(pairs, c_vectors, strict=True)])


def likelihood_scores(
    model: Any, tokenizer: Any, pairs: Sequence[dict], batch_size: int = 8
) -> np.ndarray:
    """Mean log p(description | candidate) per pair, through `scoring.mean_logprobs`."""
    from components.common.scoring import mean_logprobs
    from components.common.sft import IGNORE_INDEX

    features = []
    for p in pairs:
        prompt = tokenizer(LM_TEMPLATE.format(candidate=p["candidate"]), add_special_tokens=False)
        answer = tokenizer(" " + p["query"], add_special_tokens=False)["input_ids"]
        ids = prompt["input_ids"] + answer
        labels = [IGNORE_INDEX] * len(prompt["input_ids"]) + answer
        features.append({"input_ids": ids, "attention_mask": [1] * len(ids), "labels": labels})
    return mean_logprobs(model, tokenizer, features, batch_size).numpy()


def standardize(scores: np.ndarray, pool: np.ndarray) -> np.ndarray:
    """(scores - mean) / std of `pool` (the unlabeled pairs): label-free, one scale per teacher."""
    return (scores - pool.mean()) / max(float(pool.std()), 1e-12)
