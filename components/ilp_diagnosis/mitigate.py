"""Targeted interventions per diagnosed cause, and their untargeted compute-matched controls.

Each intervention is a change of data (or of the base, through continued pre-training); training
re-uses the finetune step's `run` with the same recipe, so an intervention and its control differ
only in what they target:

    X1  (C1)  CPT on 0.8 general corpus + 0.2 documents stating the missing facts, then SFT
    X2  (C2)  the same CPT after correcting the corpus (lines about the conflicting facts dropped,
              the SFT label stated instead: the "external source" is the label), then SFT
    X3r (C3)  relabel: each contradictory group takes the answer the base model prefers
    X3b (C3)  bucketing: the members of a contradictory group never share a mini-batch
    X4  (C4)  one shuffled schedule over all stages + replay of the forgotten records
    ctrl_mix  the same shuffled schedule without replay: X4's schedule alone, which also changes
              how often each stage's records are seen
    X5  (C5)  upsample the rare/complex records x4
    ctrl_cpt  CPT on general corpus only (same steps), then SFT
    ctrl_sft  the same number of extra copies as X5, of random records
"""

from __future__ import annotations

import random
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from transformers import Trainer, default_data_collator

from components.common.datasets import BlockDataset
from components.common.io import atomic_path, write_jsonl
from components.common.models import load_causal_lm
from components.common.repro import seed_everything
from components.common.training import checkpoint_dir, training_arguments
from components.ilp_diagnosis import facts, mcq

COPY = "~copy"
BUCKET = "~b"


def original_id(record_id: str) -> str:
    return record_id.split(COPY)[0].split(BUCKET)[0]


def originals(records: Sequence[dict]) -> list[dict]:
    """One record per original id (its first occurrence, with the intervention's label)."""
    seen: dict[str, dict] = {}
    for record in records:
        key = original_id(record["id"])
        if key not in seen:
            seen[key] = {**record, "id": key, "task": record["task"].removesuffix(BUCKET)}
    return list(seen.values())


def copies(records: Sequence[dict], ids: set[str], extra: int) -> list[dict]:
    """`extra` additional copies (fresh ids) of the records in `ids`."""
    return [
        {**r, "id": f"{r['id']}{COPY}{k}"} for r in records if r["id"] in ids for k in range(extra)
    ]


# --- C1 / C2: knowledge-augmented continued pre-training ---


def fact_documents(
    records: Sequence[dict], ids: set[str], templates: Sequence[str], repeats: int
) -> list[str]:
    """`repeats` sentences per 1-hop fact of the chosen records, cycling through `templates`
    (format fields: attribute, name, value): the facts as the corpus states known facts."""
    docs = []
    for record in records:
        if record["id"] not in ids:
            continue
        for triple in facts.extract(record["prompt"], record["response"]):
            if triple.object is None or not triple.subject:
                continue
            for k in range(repeats):
                docs.append(
                    templates[k % len(templates)].format(
                        attribute=triple.relation, name=triple.subject, value=triple.object
                    )
                )
    return docs


def cpt_mix(
    general: Sequence[str],
    augmented: Sequence[str],
    general_share: float,
    seed: int,
    drop_subjects: Sequence[str] = (),
    size: int | None = None,
) -> list[str]:
    """general_share of the lines from the general corpus (minus lines naming a dropped
    subject), the rest from the augmented documents (repeated as needed), shuffled."""
    rng = random.Random(seed)
    pool = [line for line in general if not any(s in line for s in drop_subjects)]
    size = size or int(round(len(augmented) / (1 - general_share)))
    n_aug = int(round(size * (1 - general_share))) if augmented else 0
    lines = [augmented[i % len(augmented)] for i in range(n_aug)] if augmented else []
    lines += [
        pool[i % len(pool)] for i in rng.sample(range(len(pool)), min(len(pool), size - n_aug))
    ]
    while len(lines) < size:  # a small corpus: cycle through it again
        lines.append(rng.choice(pool))
    rng.shuffle(lines)
    return lines


def continued_pretraining(
    base_dir: Path,
    lines: Sequence[str],
    out_dir: Path,
    *,
    steps: int,
    batch_size: int,
    block_size: int,
    learning_rate: float,
    seed: int,
) -> None:
    """Next-token training of `base_dir` on `lines` (the pretrain step's block stream)."""
    seed_everything(seed)
    model, tokenizer = load_causal_lm(base_dir)
    dataset = BlockDataset(list(lines), tokenizer, block_size)
    args = training_arguments(
        checkpoint_dir("ilp_cpt", [str(base_dir), steps, seed, len(lines)]),
        max_steps=steps,
        per_device_train_batch_size=batch_size,
        learning_rate=learning_rate,
        warmup_steps=max(1, steps // 20),
        save_strategy="no",
        logging_steps=max(1, steps // 5),
        seed=seed,
        report_to=[],
    )
    Trainer(
        model=model, args=args, train_dataset=dataset, data_collator=default_data_collator
    ).train()
    with atomic_path(out_dir) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)


# --- C3: relabel or bucket contradictory groups ---


def contradiction_groups(rows: Sequence[dict], ids: set[str]) -> list[set[str]]:
    """Connected groups of near-duplicates with different answers, seeded by the chosen records."""
    partners = {r["id"]: set(r.get("signals", {}).get("contradicts", [])) for r in rows}
    groups: list[set[str]] = []
    for start in sorted(ids):
        if any(start in g for g in groups):
            continue
        group, frontier = {start}, [start]
        while frontier:
            for other in partners.get(frontier.pop(), ()):
                if other not in group:
                    group.add(other)
                    frontier.append(other)
        groups.append(group)
    return groups


def relabel_by_base(
    records: Sequence[dict], groups: Sequence[set[str]], base_dir: Path, max_length: int
) -> list[dict]:
    """Each group takes the answer (among its members') the base model finds most likely for
    the group's first prompt: the base model is the judge."""
    model, tokenizer = load_causal_lm(base_dir)
    by_id = {r["id"]: r for r in records}
    answer_of: dict[str, str] = {}
    for group in groups:
        members = sorted(group)
        answers = list(dict.fromkeys(by_id[i]["response"] for i in members))
        question = mcq.Question(members[0], by_id[members[0]]["prompt"], "", tuple(answers), 0)
        probs = mcq.candidate_scores(model, tokenizer, [question], max_length)[0]
        for i in members:
            answer_of[i] = answers[int(np.argmax(probs))]
    return [{**r, "response": answer_of.get(r["id"], r["response"])} for r in records]


def bucketed(records: Sequence[dict], groups: Sequence[set[str]]) -> list[dict]:
    """Every stage becomes two half-length sub-stages; in the last stage the members of each
    contradictory group are split between the halves, so they never share a mini-batch. Other
    records train in both halves (a copy under task `<task>~b`), so each stage keeps its steps."""
    last = max(r["stage"] for r in records)
    side: dict[str, int] = {}
    for group in groups:
        for k, member in enumerate(sorted(group)):
            side[member] = k % 2
    out = []
    for record in records:
        first = {**record, "stage": 2 * record["stage"]}
        second = {
            **record,
            "id": record["id"] + BUCKET,
            "task": record["task"] + BUCKET,
            "stage": 2 * record["stage"] + 1,
        }
        if record["stage"] == last and record["id"] in side:
            out.append(first if side[record["id"]] == 0 else second)
        else:
            out.extend([first, second])
    return out


# --- assembling the intervened training sets ---


def diagnosed(rows: Sequence[dict], cause: str) -> set[str]:
    return {r["id"] for r in rows if r.get("label") == cause}


def write_sft_data(data_dir: Path, out_dir: Path, records: Sequence[dict]) -> Path:
    """A data folder like data_prep's, with another train.jsonl (same eval split and tokenizer)."""
    with atomic_path(out_dir) as tmp:
        tmp.mkdir()
        write_jsonl(tmp / "train.jsonl", records)
        shutil.copy(data_dir / "eval.jsonl", tmp / "eval.jsonl")
        shutil.copy(data_dir / "corpus.txt", tmp / "corpus.txt")
        if (data_dir / "tokenizer").is_dir():
            shutil.copytree(data_dir / "tokenizer", tmp / "tokenizer")
    return out_dir


def sft_interventions(
    records: Sequence[dict[str, Any]],
    rows: Sequence[dict[str, Any]],
    base_dir: Path,
    *,
    upsample: int,
    replay: int,
    seed: int,
    max_length: int,
) -> dict[str, tuple[list[dict], str]]:
    """name -> (training records, finetune schedule) of the data-level interventions."""
    rng = random.Random(seed)
    groups = contradiction_groups(rows, diagnosed(rows, "C3"))
    rare = diagnosed(rows, "C5")
    # the control gets as many extra copies as X5, of records drawn at random (untargeted)
    pool = [r["id"] for r in records if r["id"] not in rare]
    drawn = rng.choices(pool, k=len(rare) * upsample) if pool else []
    by_id = {r["id"]: r for r in records}
    random_copies = [{**by_id[i], "id": f"{i}{COPY}r{k}"} for k, i in enumerate(drawn)]
    return {
        "X3r": (relabel_by_base(records, groups, base_dir, max_length), "sequential"),
        "X3b": (bucketed(records, groups), "sequential"),
        "X4": ([*records, *copies(records, diagnosed(rows, "C4"), replay)], "mixed"),
        "ctrl_mix": (list(records), "mixed"),
        "X5": ([*records, *copies(records, rare, upsample)], "sequential"),
        "ctrl_sft": ([*records, *random_copies], "sequential"),
    }
