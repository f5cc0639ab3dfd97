"""Fact probes of the base model, from a small pattern-based "OpenIE" over question templates.

A record "question: what is the color of Kalo?" -> "red" yields the triple (Kalo, color, red),
probed as the cloze "The color of Kalo is" scored over the attribute's candidate values (every
answer given to that attribute anywhere in the SFT set), all candidates of a batch in one forward
pass.
A 2-hop question ("the color of the friend of Kalo") is probed as a chain: the base completes
"The friend of Kalo is" (sampled free text), then "The color of <that> is" over the candidates;
the chain passes when it ends at the gold answer. Unknown templates yield no triples: the signal
is missing and rules that need it do not fire."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from transformers import PreTrainedTokenizerBase

from components.common.scoring import shared_prefix_logprobs
from components.ilp_diagnosis.mcq import bon_pass_rates
from components.ilp_diagnosis.templates import normalise_answer

_PREFIX = r"^\s*(?:question:\s*)?"
TWO_HOP = re.compile(
    _PREFIX
    + r"what(?:'s| is) the (?P<attr>[a-z ]+?) of the (?P<rel>[a-z ]+?) of (?P<ent>.+?)\s*\?\s*$",
    re.IGNORECASE,
)
ONE_HOP = (
    re.compile(_PREFIX + r"what(?:'s| is) the (?P<attr>[a-z ]+?) of (?P<ent>.+?)\s*\?\s*$", re.I),
    re.compile(_PREFIX + r"which (?P<attr>[a-z ]+?) does (?P<ent>.+?) have\s*\?\s*$", re.I),
)
PROBE = "The {attr} of {ent} is"


@dataclass(frozen=True)
class Triple:
    subject: str
    relation: str
    object: str | None  # None: the intermediate entity of a 2-hop chain (unknown to us)


def extract(prompt: str, answer: str) -> list[Triple]:
    """The triples a record needs: one for a 1-hop question, a chain of two for a 2-hop one."""
    match = TWO_HOP.match(prompt)
    if match:
        rel, attr = match["rel"].lower(), match["attr"].lower()
        return [Triple(match["ent"], rel, None), Triple("", attr, answer.strip())]
    for pattern in ONE_HOP:
        match = pattern.match(prompt)
        if match:
            return [Triple(match["ent"], match["attr"].lower(), answer.strip())]
    return []


def candidate_values(records: Sequence[dict[str, Any]]) -> dict[str, list[str]]:
    """Every answer given to each relation by any 1-hop (or final-hop) triple of the SFT set."""
    values: dict[str, dict[str, str]] = defaultdict(dict)
    for record in records:
        for triple in extract(record["prompt"], record["response"]):
            if triple.object is not None:
                values[triple.relation].setdefault(normalise_answer(triple.object), triple.object)
    return {rel: sorted(v.values()) for rel, v in values.items()}


def add_candidates(
    candidates: dict[str, list[str]], extra: dict[str, Sequence[str]]
) -> dict[str, list[str]]:
    """The SFT set's candidate values plus a gazetteer's (`ilp_diagnosis.fact_candidates`), one
    per normalised value, sorted."""
    merged = {rel: {normalise_answer(v): v for v in values} for rel, values in candidates.items()}
    for rel, values in extra.items():
        for value in values:
            merged.setdefault(rel, {}).setdefault(normalise_answer(value), value)
    return {rel: sorted(values.values()) for rel, values in merged.items()}


def cloze_probs(
    model, tokenizer, probes: list[tuple[str, str, list[str]]], max_length: int, batch_size: int
) -> list[np.ndarray]:
    """probes: (subject, relation, candidates) -> the model's distribution over the candidates
    as the continuation of "The <relation> of <subject> is" (raw text, no chat template)."""
    scored = shared_prefix_logprobs(
        model,
        tokenizer,
        [PROBE.format(attr=relation, ent=subject) for subject, relation, _ in probes],
        [[f" {value}." for value in candidates] for _, _, candidates in probes],
        max_length,
        batch_size,
        add_eos=False,
    )
    return [torch.softmax(sums.double(), 0).numpy() for sums, _ in scored]


@torch.no_grad()
def _complete(model, tokenizer, prefixes: list[str], n: int, seed: int) -> list[list[str]]:
    """N sampled first words after each raw prefix (the free-text hop of a chain)."""
    padding_side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    model.eval()
    torch.manual_seed(seed)
    batch = tokenizer(prefixes, return_tensors="pt", padding=True, add_special_tokens=False)
    output = model.generate(
        **batch.to(model.device),
        do_sample=True,
        top_k=0,
        num_return_sequences=n,
        max_new_tokens=6,
        pad_token_id=tokenizer.pad_token_id,
    )
    tokenizer.padding_side = padding_side
    texts = tokenizer.batch_decode(
        output[:, batch["input_ids"].shape[1] :], skip_special_tokens=True
    )
    words = [(re.findall(r"[\w'-]+", t) or [""])[0] for t in texts]
    return [words[i : i + n] for i in range(0, len(words), n)]


def one_hop_facts(
    records: Sequence[dict[str, Any]], candidates: dict[str, list[str]]
) -> list[tuple[int, str, str, int]]:
    """(record index, subject, relation, the gold value's index among the relation's candidates)
    of every record with one 1-hop fact whose relation has at least two candidates."""
    found = []
    for index, record in enumerate(records):
        triples = extract(record["prompt"], record["response"])
        if len(triples) == 1 and len(candidates.get(triples[0].relation, ())) >= 2:
            t = triples[0]
            values = [normalise_answer(c) for c in candidates[t.relation]]
            found.append((index, t.subject, t.relation, values.index(normalise_answer(t.object))))
    return found


def belief_against(probs: np.ndarray, gold: int) -> float:
    """The largest probability the model puts on a value other than the gold one."""
    others = np.delete(np.asarray(probs, float), gold)
    return float(others.max()) if others.size else 0.0


def beliefs_against_labels(
    model: torch.nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    records: Sequence[dict[str, Any]],
    candidates: dict[str, list[str]],
    *,
    max_length: int,
    batch_size: int = 64,
) -> list[float | None]:
    """Per 1-hop record: how confidently the model's own fact contradicts the label
    (`belief_against` of its cloze distribution over the relation's candidates); None when the
    record has no probeable 1-hop fact."""
    beliefs: list[float | None] = [None] * len(records)
    facts = one_hop_facts(records, candidates)
    if not facts:
        return beliefs
    probes = [(s, r, candidates[r]) for _, s, r, _ in facts]
    probs = cloze_probs(model, tokenizer, probes, max_length, batch_size)
    for (index, *_, gold), p in zip(facts, probs, strict=True):
        beliefs[index] = belief_against(p, gold)
    return beliefs


def probe_facts(
    model: torch.nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    records: Sequence[dict[str, Any]],
    candidates: dict[str, list[str]],
    *,
    n: int,
    seeds: Sequence[int],
    threshold: float,
    max_length: int,
    batch_size: int = 64,
) -> list[float | None]:
    """Per record: the fraction of its facts the model knows (BoN pass rate >= threshold on some
    seed), or None when no fact could be extracted or probed."""
    known: list[float | None] = [None] * len(records)
    single = one_hop_facts(records, candidates)
    chains: list[tuple[int, Triple, Triple]] = []
    for index, record in enumerate(records):
        triples = extract(record["prompt"], record["response"])
        if len(triples) == 2:
            chains.append((index, *triples))

    if single:
        probes = [(s, r, candidates[r]) for _, s, r, _ in single]
        probs = cloze_probs(model, tokenizer, probes, max_length, batch_size)
        rates = bon_pass_rates(probs, [gold for *_, gold in single], n, seeds)
        for (index, *_), row in zip(single, rates, strict=True):
            known[index] = float((row >= threshold).any())

    for index, first, last in chains:
        values = candidates.get(last.relation, [])
        if len(values) < 2:
            continue
        passes = []
        for seed in seeds:
            middles = _complete(
                model, tokenizer, [PROBE.format(attr=first.relation, ent=first.subject)], n, seed
            )[0]
            probes = [(m or "?", last.relation, values) for m in middles]
            probs = cloze_probs(model, tokenizer, probes, max_length, batch_size)
            generator = torch.Generator().manual_seed(seed)
            picks = [
                values[int(torch.multinomial(torch.from_numpy(p), 1, generator=generator))]
                for p in probs
            ]
            hits = [normalise_answer(v) == normalise_answer(last.object) for v in picks]
            passes.append(float(np.mean(hits)))
        known[index] = float(max(passes) >= threshold)
    return known
